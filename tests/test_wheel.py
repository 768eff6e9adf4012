"""A wheel built from the repository works in a fresh virtual environment, not only editable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ocireg import __version__
from tests.liveserver import free_port, running, write_config

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["pyproject.toml", "README.md", "impl", "ext", "spec", "conformance"]


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"  # a copy, so the build leaves no build/ or egg-info in the checkout
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    _run(sys.executable, "-m", "build", "--wheel", "--outdir", work / "dist", source)
    (built,) = (work / "dist").glob("ocireg-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Path:
    env = wheel.parent.parent / "venv"
    _run(sys.executable, "-m", "venv", env)
    _run(env / "bin" / "pip", "install", "--quiet", wheel)
    return env


def test_wheel_installs_the_command(venv: Path) -> None:
    assert _run(venv / "bin" / "ocireg", "--version").strip() == f"ocireg {__version__}"


def test_wheel_carries_the_extension_kit_templates(venv: Path, tmp_path: Path) -> None:
    written = _run(venv / "bin" / "ocireg", "ext", "new", "hello", "--namespace", "acme",
                   "--dir", tmp_path / "kit")  # fmt: skip
    names = sorted(Path(line).relative_to(tmp_path / "kit").as_posix()
                   for line in written.splitlines())  # fmt: skip
    assert names == [
        "README.md",
        "pyproject.toml",
        "src/ocireg_acme_hello/__init__.py",
        "src/ocireg_acme_hello/ext-acme-hello.md",
        "src/ocireg_acme_hello/ext-acme-hello.yaml",
        "src/ocireg_acme_hello/handlers.py",
        "tests/test_hello.py",
    ]


def test_wheel_serves_from_its_packaged_spec(venv: Path, tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, tmp_path / "data", port, None)
    module_path = _run(venv / "bin" / "python", "-c", "import ocireg; print(ocireg.__file__)")
    assert module_path.startswith(str(venv)), module_path  # not the editable checkout
    command = ["serve", str(config)]
    url = f"http://127.0.0.1:{port}"
    with running(command, tmp_path, url, tmp_path / "data", python=venv / "bin" / "python"):
        response = httpx.get(f"{url}/v2/no-such/tags/list")
        assert response.status_code == 404
        assert response.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_wheel_carries_the_web_uis_pages_and_files(wheel: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted((Path(__file__).parents[1] / "ext" / "ui" / "templates").glob("*.html"))
    assert len(templates) > 10  # every page's, each carried
    for template in templates:
        assert f"ocireg/ext/ui/templates/{template.name}" in names
    assert {"ocireg/ext/ui/static/ui.css", "ocireg/ext/ui/static/ui.js"} <= names


def test_conformance_needs_its_extra_and_then_runs(venv: Path, wheel: Path, tmp_path: Path) -> None:
    ocireg = venv / "bin" / "ocireg"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    bare = subprocess.run([ocireg, "conformance", "--url", url], capture_output=True, text=True)
    assert bare.returncode == 2
    assert "pip install 'ocireg[conformance]'" in bare.stdout
    _run(venv / "bin" / "pip", "install", "--quiet", f"{wheel}[conformance]")
    config = write_config(tmp_path, tmp_path / "data", port, None)
    with running(["serve", str(config)], tmp_path, url, tmp_path / "data", venv / "bin" / "python"):
        report = _run(ocireg, "conformance", "--url", url, "--schema", "strict")
    assert report.splitlines()[-1] == "result: passed"


def test_minimal_install_serves_the_core_alone(venv: Path, tmp_path: Path) -> None:
    python = venv / "bin" / "python"
    absent = subprocess.run([python, "-c", "import prometheus_client"], capture_output=True)
    assert absent.returncode != 0  # no extra installed: a minimal install
    port = free_port()
    config = write_config(tmp_path, tmp_path / "data", port, None)
    url = f"http://127.0.0.1:{port}"
    with running(["serve", str(config)], tmp_path, url, tmp_path / "data", python=python):
        listing = httpx.get(f"{url}/v2/_oci/ext/discover").json()
        assert [entry["name"] for entry in listing["extensions"]] == ["_ocireg"]
        for path in ("/v2/_zot/ext/mgmt", "/v2/_zot/ext/search"):
            assert httpx.get(url + path).json()["errors"][0]["code"] == "EXTENSION_UNKNOWN"
        assert httpx.get(f"{url}/metrics").status_code == 404


def test_an_extension_without_its_extra_stops_start_up_in_one_line(
    venv: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, tmp_path / "data", free_port(), {"extensions": {"metrics": {}}})
    for command in ("serve", "verify"):
        done = subprocess.run(
            [venv / "bin" / "ocireg", command, config], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1
        assert done.stderr.splitlines() == [
            f"{config}: extensions.metrics: needs prometheus_client, not installed: "
            "pip install 'ocireg[metrics]'"
        ]
