"""The ``ocireg`` command line: verify, schema, --version, and serve's start-up checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ocireg import __version__
from ocireg.cli import main
from tests.liveserver import free_port
from tests.postgres import Postgres, postgres

__all__ = ["postgres"]  # the session fixture, used here by name

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"ocireg {__version__}"


def test_verify_accepts_a_good_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the production example, with its places on this machine (verify checks that they work)
    text = (EXAMPLES / "production.yaml").read_text()
    path = tmp_path / "production.yaml"
    path.write_text(text.replace("/srv/ocireg", str(tmp_path / "srv")).replace(
        "/var/log/ocireg", str(tmp_path)))  # fmt: skip
    assert main(["verify", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: configuration is valid"


def test_verify_names_the_key_path_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "storage:\n  rootDirectory: /d\nhttp:\n  tls:\n    cert: a\n    key: b\n    pin: c\n"
    )
    assert main(["verify", str(path)]) == 1
    assert capsys.readouterr().err.strip() == f"{path}: http.tls.pin: unknown key"


def test_verify_suggests_the_nearest_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "typos.yaml"
    path.write_text(
        "storage:\n  rootDirectory: /d\n  subPaths:\n    /a:\n      rootDirectory: /e\n"
        "      dedup: true\nhttp:\n  adress: 0.0.0.0\n  zzz: 1\n"
    )
    assert main(["verify", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: storage.subPaths./a.dedup: unknown key (did you mean dedupe?)",
        f"{path}: http.adress: unknown key (did you mean address?)",
        f"{path}: http.zzz: unknown key",
    ]


def test_a_distribution_config_gets_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yml"
    path.write_text("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /r\n")
    assert main(["verify", str(path)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: this is a CNCF distribution (docker-registry) configuration")
    assert "ocireg reads zot's format" in line


def test_serve_help_says_what_config_is(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a configuration file in zot's format, JSON (.json) or YAML (.yaml, .yml)" in text
    assert "Without CONFIG: the embedded default" in text


def test_verify_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(tmp_path / "none.json")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_serve_refuses_auth_files_it_cannot_use_by_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-htpasswd"
    config = {
        "storage": {"rootDirectory": str(tmp_path / "data")},
        "http": {"port": 5999, "auth": {"htpasswd": {"path": str(missing)}}},
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    assert main(["serve", str(path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"{path}: http.auth.htpasswd.path: ")
    assert str(missing) in error


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"storage", "http", "log", "extensions"} <= set(schema["properties"])


def test_serve_refuses_unreadable_tls_files_by_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "storage": {"rootDirectory": str(tmp_path / "data")},
        "http": {"tls": {"cert": str(tmp_path / "no.crt"), "key": str(tmp_path / "no.key")}},
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    assert main(["serve", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{path}: http.tls.cert: cannot read {tmp_path / 'no.crt'}",
        f"{path}: http.tls.key: cannot read {tmp_path / 'no.key'}",
    ]
    assert not (tmp_path / "data").exists()


def test_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    script = shutil.which("ocireg") or str(Path(sys.executable).parent / "ocireg")
    done = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"ocireg {__version__}"


@pytest.mark.parametrize(
    ("section", "key", "value", "why"),
    [
        ("storage", "rootDirectory", "/proc/ocireg", "cannot write in /proc"),
        ("storage", "rootDirectory", "/etc/hostname", "exists and is not a directory"),
        ("log", "output", "/nonexistent/dir/log.txt", "its directory /nonexistent/dir does not"),
        ("http", "address", "192.0.2.1", "not an address of this host"),
    ],
)
def test_an_unusable_machine_is_one_line_in_verify_and_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, key: str, value: str, why: str
) -> None:
    config: dict[str, Any] = {"storage": {"rootDirectory": str(tmp_path / "data")}}
    config.setdefault(section, {})[key] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    for command in ("verify", "serve"):
        assert main([command, str(path)]) == 1
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith(f"{path}: {section}.{key}: {value}: {why}"), line
    assert not (tmp_path / "data").exists()  # nothing was made


def _with_database(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "pg.json"
    driver = {"name": "postgres", "url": url}
    path.write_text(json.dumps({"storage": {"rootDirectory": str(tmp_path / "d"),
                                            "cacheDriver": driver}}))  # fmt: skip
    return path


def test_verify_connects_to_the_postgres_meta_db(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres: Postgres
) -> None:
    path = _with_database(tmp_path, postgres.new_database())
    assert main(["verify", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: configuration is valid"


def test_verify_says_when_the_postgres_meta_db_cannot_be_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres: Postgres
) -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/db"  # nothing listens there
    missing = postgres.url("no_such_database")
    for url in (nobody, missing):
        path = _with_database(tmp_path, url)
        assert main(["verify", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"{path}: storage.cacheDriver.url: cannot connect: "), err
