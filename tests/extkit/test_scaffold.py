"""``ocireg ext new``: a scaffolded extension, pip-installed into a fresh venv beside ocireg,
passes its own tests and is served, routed and discovered without a change to ocireg."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ocireg.cli import main
from tests.liveserver import free_port, running, write_config


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["Hello", "--namespace", "acme"], "extension name 'Hello'"),
        (["1x", "--namespace", "acme"], "extension name '1x'"),
        (["hello", "--namespace", "Acme!"], "namespace 'Acme!'"),
        (["hello", "--namespace", "_oci"], "reserved by the OCI"),
        (["hello", "--namespace", "catalog"], "reserved by the OCI"),
    ],
)
def test_bad_names_are_refused_with_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main(["ext", "new", *args, "--dir", str(tmp_path / "x")]) == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_directory_with_something_in_it_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.txt").write_text("keep")
    assert main(["ext", "new", "hello", "--namespace", "acme", "--dir", str(tmp_path)]) == 2
    assert "is not an empty directory" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def _venv(where: Path) -> Path:
    """A fresh venv that sees ocireg and its dependencies (installed where this test runs)
    but none of the scaffold's packages; pip and setuptools come from there too, so that the
    install needs no index."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(where)],
        check=True,
    )
    return where / "bin" / "python"


def test_a_scaffold_installs_passes_its_tests_and_is_served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "ocireg-acme-hello"
    assert main(["ext", "new", "hello", "--namespace", "_acme", "--dir", str(package)]) == 0
    assert "pip install -e" in capsys.readouterr().err
    python = _venv(tmp_path / "venv")
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
               "--no-build-isolation", "-e", str(package)]  # fmt: skip
    subprocess.run(install, check=True, capture_output=True)
    # as its author would run them: not as part of this session (an xdist worker's variables
    # make plugins such as pytest-benchmark warn, and the scaffold turns warnings into errors)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    own_tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=package, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
    assert "5 passed" in own_tests.stdout

    port, root = free_port(), tmp_path / "data"
    config = write_config(tmp_path, root, port, {"extensions": {"hello": {"greeting": "hi"}}})
    url = f"http://127.0.0.1:{port}"
    with running(["serve", str(config)], tmp_path, url, root, python=python):
        greeting = httpx.get(f"{url}/v2/_acme/ext/hello")
        assert greeting.status_code == 200
        assert greeting.json() == {"extension": "hello", "greeting": "hi"}
        unknown = httpx.get(f"{url}/v2/nothing/here/_acme/ext/hello")
        assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        discovered = httpx.get(f"{url}/v2/_oci/ext/discover").json()["extensions"]
        assert "_acme" in [entry["name"] for entry in discovered]
        document = httpx.get(f"{url}/openapi.json").json()
        assert "/v2/_acme/ext/hello" in document["paths"]
        fragment = package / "src" / "ocireg_acme_hello" / "ext-acme-hello.yaml"
        conformance = subprocess.run(
            [str(python), "-m", "ocireg", "conformance", "--extension", str(fragment),
             "--url", url, "--examples", "10"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert conformance.returncode == 0, conformance.stdout + conformance.stderr
        assert "extension _acme: conforms" in conformance.stdout

    bad = json.loads(config.read_text())
    bad["extensions"]["hello"]["greting"] = "typo"
    config.write_text(json.dumps(bad))
    verify = subprocess.run([str(python), "-m", "ocireg", "verify", str(config)],
                            capture_output=True, text=True)  # fmt: skip
    assert verify.returncode == 1
    assert "extensions.hello" in verify.stderr and "greting" in verify.stderr
