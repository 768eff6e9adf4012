"""``http.auth.openid`` through ``ocireg verify``: zot's keys honoured, or refused naming the key
path (ocireg.auth.openidconfig, ocireg.auth.settings, ocireg.auth.build)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from ocireg.auth.build import build_guard
from ocireg.cli import main
from ocireg.config import Config
from ocireg.configcheck import ConfigError
from ocireg.meta.db import SQLiteMetaDB

OIDC = {"clientid": "c", "clientsecret": "s", "issuer": "https://sso.example.com"}


def _verify(tmp_path: Path, capsys: pytest.CaptureFixture[str], **auth: Any) -> tuple[int, str]:
    config = {
        "storage": {"rootDirectory": str(tmp_path / "data")},
        "http": {"address": "127.0.0.1", "port": 5000, "auth": auth},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    try:
        code = main(["verify", str(path)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def test_every_zot_provider_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    providers = {
        "oidc": {**OIDC, "name": "SSO", "scopes": ["email", "groups"],
                 "claimMapping": {"username": "preferred_username", "groups": "roles"}},
        "google": {"clientid": "g", "clientsecret": "x"},
        "gitlab": {"clientid": "l"},  # a public client: PKCE alone
        "github": {"clientid": "h", "clientsecret": "y",
                   "authurl": "https://ghe.example.com/login/oauth/authorize",
                   "tokenurl": "https://ghe.example.com/login/oauth/access_token"},
    }  # fmt: skip
    openid = {"providers": providers, "callbackAllowOrigins": ["https://ui.example.com"]}
    code, said = _verify(tmp_path, capsys, openid=openid)
    assert code == 0, said


@pytest.mark.parametrize(
    ("openid", "why"),
    [
        ({"providers": {"okta": OIDC}}, "provider 'okta' is not one of zot's"),
        ({"providers": {}}, "name at least one of"),
        ({"providers": {"oidc": {"clientid": "c"}}}, "oidc: issuer is required"),
        ({"providers": {"oidc": {**OIDC, "keypath": "/k.pem"}}}, "keypath"),
        ({"providers": {"oidc": {**OIDC, "clientid": None}}}, "clientid (or credentialsFile)"),
        ({"providers": {"oidc": {**OIDC, "issuer": "sso.example.com"}}}, "not an http(s) URL"),
        ({"providers": {"oidc": {**OIDC, "tokenurl": "https://t"}}}, "github only"),
        ({"providers": {"oidc": {**OIDC, "secret": "x"}}}, "secret"),
        ({"providers": {"oidc": OIDC}, "callbackAllowOrigins": ["https://x/home"]}, "origin"),
    ],
)
def test_what_cannot_work_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], openid: dict[str, Any], why: str
) -> None:
    code, said = _verify(tmp_path, capsys, openid=openid)
    assert code == 1 and "http.auth.openid" in said and why in said, said


def test_openid_turns_api_keys_on_and_refuses_them_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, said = _verify(tmp_path, capsys, openid={"providers": {"oidc": OIDC}}, apikey=False)
    assert code == 1 and "apikey: OpenID login turns API keys on" in said


def test_openid_next_to_registry_tokens_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bearer = {"realm": "https://auth/token", "service": "reg", "cert": str(tmp_path / "c.pem")}
    code, said = _verify(tmp_path, capsys, openid={"providers": {"oidc": OIDC}}, bearer=bearer)
    assert code == 1 and "remove openid" in said


def test_session_keys_serve_openid_sessions_without_the_ui(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"hashKey": "h" * 32, "encryptKey": "e" * 32}))
    auth = {"openid": {"providers": {"oidc": OIDC}}, "sessionKeysFile": str(keys)}
    config = Config.model_validate(
        {"storage": {"rootDirectory": str(tmp_path / "data")}, "http": {"auth": auth}}
    )
    meta = SQLiteMetaDB(tmp_path / "meta.db")
    with caplog.at_level(logging.WARNING, logger="ocireg.auth"):
        guard = build_guard(config, meta)
    assert guard is not None and guard.sessions is not None
    cookie, _ = guard.sessions.create("ann", "openid", ())
    assert len(cookie.rpartition(".")[2]) == 64  # signed with hashKey
    assert "http.auth.sessionKeysFile: encryptKey not used" in caplog.text
    guard.sessions.close()
    meta.close()


def _guard_problems(tmp_path: Path, provider: dict[str, Any]) -> list[str]:
    """What start-up (``ocireg serve``, before listening) says of the files the config names."""
    auth = {"openid": {"providers": {"oidc": provider}}}
    config = Config.model_validate(
        {"storage": {"rootDirectory": str(tmp_path / "data")}, "http": {"auth": auth}}
    )
    try:
        build_guard(config, None, "config.json")
    except ConfigError as exc:
        return exc.problems
    return []


def test_a_credentials_file_is_read_and_checked(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"clientid": "c", "clientsecret": "s"}))
    provider = {"issuer": OIDC["issuer"], "credentialsFile": str(good)}
    assert _guard_problems(tmp_path, provider) == []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"clientId": "c"}))
    (problem,) = _guard_problems(tmp_path, {**provider, "credentialsFile": str(bad)})
    assert problem.startswith("config.json: http.auth.openid.providers.oidc.credentialsFile:")
    (problem,) = _guard_problems(tmp_path, {**provider, "credentialsFile": str(tmp_path / "no")})
    assert "cannot read" in problem
