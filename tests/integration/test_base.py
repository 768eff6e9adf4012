from __future__ import annotations

import json

import httpx

from tests.liveserver import LiveServer
from tests.oci import error_codes


def test_version_check(client: httpx.Client) -> None:
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.json() == {}


def test_health_probes(client: httpx.Client) -> None:
    for probe in ("/livez", "/readyz", "/startupz"):
        response = client.get(probe)
        assert (response.status_code, response.text) == (200, "ok"), probe


def test_unknown_endpoint_is_an_oci_404(client: httpx.Client) -> None:
    response = client.get("/v2/a/nothing/here")
    assert response.status_code == 404
    assert error_codes(response) == ["NAME_UNKNOWN"]


def test_unknown_extension_is_extension_unknown(client: httpx.Client) -> None:
    response = client.get("/v2/_nope/ext/thing")
    assert response.status_code == 404
    assert error_codes(response) == ["EXTENSION_UNKNOWN"]


def test_wrong_method_lists_every_allowed_method(client: httpx.Client) -> None:
    response = client.post("/v2/a/b/tags/list")
    assert response.status_code == 405
    assert error_codes(response) == ["UNSUPPORTED"]
    assert response.headers["Allow"] == "GET, HEAD"
    response = client.patch("/v2/a/manifests/latest")
    assert response.headers["Allow"] == "DELETE, GET, HEAD, PUT"


def test_multipart_without_boundary_is_400_not_500(client: httpx.Client) -> None:
    response = client.get("/v2/", headers={"Content-Type": "multipart/form-data"})
    assert response.status_code in (200, 400)


def test_one_json_log_line_per_request(client: httpx.Client, server: LiveServer) -> None:
    client.get("/v2/logged/repo/tags/list")
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    entry = [e for e in lines if e.get("path") == "/v2/logged/repo/tags/list"][-1]
    assert entry["method"] == "GET"
    assert entry["status"] == 404
    assert entry["repo"] == "logged/repo"
    assert entry["bytes"] > 0
    assert entry["duration_ms"] >= 0
