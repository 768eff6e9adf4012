"""mgmt: zot's stripped configuration, with every secret left out."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ocireg import __version__
from ocireg.cli import main
from ocireg.ext.mgmt.handlers import binary_type, stripped_auth
from tests.auth.tokenserver import TokenServer
from tests.liveserver import live_server
from tests.oci import error_codes

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


def test_stripped_auth_names_openid_providers_without_their_secrets() -> None:
    providers = {
        "oidc": {"name": "Corp SSO", "clientid": "c", "clientsecret": "s3cret", "issuer": "x"},
        "github": {"clientid": "g", "clientsecret": "other-secret"},
    }
    stripped = stripped_auth({"openid": {"providers": providers}, "apikey": True})
    assert stripped == {
        "openid": {"providers": {"oidc": {"name": "Corp SSO"}, "github": {}}},
        "apikey": True,
    }
    assert "secret" not in str(stripped)


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


def test_search_turns_mgmt_on_as_zot_does_and_verify_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # zot's web UI reads mgmt before its login page; zot's configs only enable search
    sections = {"extensions": {"search": {}}}
    config = tmp_path / "zot.json"
    config.write_text(json.dumps({"storage": {"rootDirectory": str(tmp_path / "r")}, **sections}))
    assert main(["verify", str(config)]) == 0
    err = capsys.readouterr().err
    assert f"{config}: extensions.mgmt: on because extensions.search is on, as in zot" in err
    assert f"{config}: extensions.userprefs: on because extensions.search is on" in err
    with live_server(tmp_path, sections) as live:
        response = httpx.get(f"{live.url}/v2/_zot/ext/mgmt")
        listing = httpx.get(f"{live.url}/v2/_oci/ext/discover").json()["extensions"]
    assert response.status_code == 200 and response.json()["distSpecVersion"] == "1.1.1"
    (zot,) = [entry for entry in listing if entry["name"] == "_zot"]
    assert zot["endpoints"] == [
        "/v2/_zot/ext/mgmt",
        "/v2/_zot/ext/search",
        "/v2/_zot/ext/userprefs",
    ]


def test_mgmt_off_stays_off_with_search(tmp_path: Path) -> None:
    sections = {"extensions": {"search": {}, "mgmt": {"enable": False}}}
    with live_server(tmp_path, sections) as live:
        gone = httpx.get(f"{live.url}/v2/_zot/ext/mgmt")
    assert (gone.status_code, error_codes(gone)) == (404, ["EXTENSION_UNKNOWN"])
