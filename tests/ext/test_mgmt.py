"""mgmt: zot's stripped configuration, with every secret left out."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from ocireg import __version__
from ocireg.ext.mgmt.handlers import binary_type, stripped_auth
from tests.auth.tokenserver import TokenServer
from tests.liveserver import live_server

SECRETS = {
    "htpasswd": {"path": "/etc/ocireg/htpasswd"},
    "ldap": {
        "address": "ldap.example.com",
        "bindDN": "cn=reader,dc=x",
        "bindPassword": "ldap-secret",
        "baseDN": "dc=x",
        "userAttribute": "uid",
        "insecure": True,
    },
    "bearer": {"realm": "https://auth/token", "service": "reg", "cert": "/etc/secret.pem"},
    "apikey": True,
}


def test_stripped_auth_keeps_only_what_a_client_needs() -> None:
    assert stripped_auth(SECRETS) == {
        "htpasswd": {},
        "bearer": {"realm": "https://auth/token", "service": "reg"},
        "apikey": True,
    }
    assert stripped_auth(None) == {}
    assert stripped_auth({"LDAP": {"address": "x"}}) == {"htpasswd": {}}


def test_mgmt_over_http_shows_a_token_service(tmp_path: Path) -> None:
    signer = TokenServer(tmp_path / "tokens")
    bearer = {**SECRETS["bearer"], "cert": str(signer.cert_path)}
    sections = {"http": {"auth": {"bearer": bearer}}, "extensions": {"mgmt": {}}}
    with live_server(tmp_path, sections) as live:
        body = httpx.get(f"{live.url}/v2/_zot/ext/mgmt").json()
    assert body["http"]["auth"] == {"bearer": {"realm": "https://auth/token", "service": "reg"}}
    assert str(tmp_path) not in json.dumps(body)


def test_binary_type_is_zot_spelling() -> None:
    assert binary_type(["mgmt", "lint"]) == "-lint-mgmt"
    assert binary_type([]) == ""


def test_mgmt_over_http_shows_auth_methods_and_no_secret(tmp_path: Path) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("someone:$2y$04$" + "a" * 53 + "\n")
    # bearer excludes the other methods, so the live server shows passwords and API keys
    auth = {
        "htpasswd": {"path": str(htpasswd)},
        "ldap": SECRETS["ldap"],
        "apikey": True,
    }
    sections = {"http": {"auth": auth}, "extensions": {"mgmt": {}}}
    with live_server(tmp_path, sections) as live:
        response = httpx.get(f"{live.url}/v2/_zot/ext/mgmt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["distSpecVersion"] == "1.1.1"
    assert body["releaseTag"] == f"v{__version__}"
    assert {"lint", "mgmt", "specs"} <= set(body["binaryType"].strip("-").split("-"))
    assert body["http"]["auth"] == {"htpasswd": {}, "apikey": True}
    text = json.dumps(body)
    for secret in ("secret", str(tmp_path), "ldap.example.com", "dc=x"):
        assert secret not in text


def test_mgmt_without_auth_has_an_empty_http_section(ext_client: httpx.Client) -> None:
    assert ext_client.get("/v2/_zot/ext/mgmt").json()["http"] == {}
