"""The UI's configuration, through ``ocireg verify``: zot's keys honoured, refused or warned
about, naming the key path (ocireg.ext.ui, ocireg.auth.settings, ocireg.auth.sessionkeys)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocireg.cli import main


def _verify(tmp_path: Path, capsys: pytest.CaptureFixture[str], **sections: Any) -> tuple[int, str]:
    config = {
        "storage": {"rootDirectory": str(tmp_path / "data")},
        "http": {"address": "127.0.0.1", "port": 5000},
        **sections,
    }
    for key, value in sections.get("http", {}).items():
        config["http"][key] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    try:
        code = main(["verify", str(path)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, (captured.err + captured.out).replace(f"{path}: ", "")


def _keys(tmp_path: Path, document: Any) -> str:
    path = tmp_path / "session-keys.json"
    path.write_text(json.dumps(document))
    return str(path)


def _auth(tmp_path: Path, **auth: Any) -> dict[str, Any]:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("")
    return {"auth": {"htpasswd": {"path": str(htpasswd)}, **auth}}


UI = {"search": {}, "ui": {}}


def test_ui_without_search_is_refused_as_in_zot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, said = _verify(tmp_path, capsys, extensions={"ui": {}})
    assert code == 1 and "extensions.ui: needs extensions.search enabled too" in said
    code, said = _verify(tmp_path, capsys, extensions={"ui": {"enable": False}})
    assert code == 0


def test_session_keys_are_accepted_with_the_ui(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = _keys(tmp_path, {"hashKey": "h" * 32, "encryptKey": "e" * 32})
    http = _auth(
        tmp_path, sessionKeysFile=keys, sessionDriver={"name": "local"}, secureSession=True
    )
    code, said = _verify(tmp_path, capsys, http=http, extensions=UI)
    assert code == 0 and said.strip().endswith("configuration is valid")
    assert "http.auth" not in said  # nothing refused, nothing warned about


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"hashKey": "short"}, "hashKey must be 16 characters or more"),
        ({"encryptKey": "e" * 32}, "hashKey must be 16 characters or more"),
        ({"hashKey": "h" * 32, "blockKey": "x"}, "unknown keys blockKey"),
        ([], "must hold a JSON object"),
    ],
)
def test_unusable_session_keys_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: Any, reason: str
) -> None:
    http = _auth(tmp_path, sessionKeysFile=_keys(tmp_path, document))
    code, said = _verify(tmp_path, capsys, http=http, extensions=UI)
    assert code == 1 and "http.auth.sessionKeysFile:" in said and reason in said
    missing = _auth(tmp_path, sessionKeysFile=str(tmp_path / "absent.json"))
    code, said = _verify(tmp_path, capsys, http=missing, extensions=UI)
    assert code == 1 and "http.auth.sessionKeysFile: cannot read" in said


def test_session_drivers_other_than_local_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for driver in ({"name": "redis", "url": "redis://x"}, "redis", {"name": "local", "x": 1}):
        code, said = _verify(
            tmp_path, capsys, http=_auth(tmp_path, sessionDriver=driver), extensions=UI
        )
        assert code == 1 and "http.auth.sessionDriver" in said, driver


def test_session_keys_without_the_ui_are_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    http = _auth(
        tmp_path, sessionKeysFile=_keys(tmp_path, {"hashKey": "h" * 32}), secureSession=False
    )
    code, said = _verify(tmp_path, capsys, http=http)
    assert code == 0
    for key in ("sessionKeysFile", "secureSession"):
        assert f"http.auth.{key}: not used: only the web UI (extensions.ui) and" in said


def test_an_openid_provider_without_its_issuer_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    http = _auth(tmp_path, openid={"providers": {"oidc": {"clientid": "c"}}})
    code, said = _verify(tmp_path, capsys, http=http, extensions=UI)
    assert code == 1 and "http.auth.openid" in said and "oidc: issuer is required" in said
