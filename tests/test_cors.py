"""``http.allowOrigin`` on a live registry: CORS headers on every answer, and preflights
answered before authentication, as zot does (a small config with zot's allowOrigin key)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.auth.registries import write_htpasswd
from tests.liveserver import live_server

ORIGIN = "https://ui.example"


def test_allow_origin_is_sent_and_preflights_pass_before_authentication(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"ann": "pw"})
    http = {"allowOrigin": ORIGIN, "auth": {"htpasswd": {"path": str(htpasswd)}}}
    with live_server(tmp_path / "s", {"http": http}) as live:
        preflight = httpx.options(
            f"{live.url}/v2/team/app/manifests/v1",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
        methods = preflight.headers["Access-Control-Allow-Methods"]
        assert {"GET", "PUT", "DELETE", "OPTIONS"} <= {m.strip() for m in methods.split(",")}
        assert "X-ZOT-API-CLIENT" in preflight.headers["Access-Control-Allow-Headers"]
        assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
        refused = httpx.get(
            f"{live.url}/v2/_catalog", headers={"Origin": ORIGIN}, auth=("ann", "wrong")
        )
        assert refused.status_code == 401
        assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN
        listed = httpx.get(f"{live.url}/v2/_catalog", auth=("ann", "pw"))
        assert listed.status_code == 200
        assert listed.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_without_allow_origin_there_are_no_cors_headers(tmp_path: Path) -> None:
    with live_server(tmp_path) as live:
        answer = httpx.get(f"{live.url}/v2/", headers={"Origin": ORIGIN})
        assert answer.status_code == 200
        assert not any(name.lower().startswith("access-control-") for name in answer.headers)
        preflight = httpx.options(f"{live.url}/v2/a/manifests/v1", headers={"Origin": ORIGIN})
        assert preflight.status_code != 204
