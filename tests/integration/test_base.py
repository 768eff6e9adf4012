from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx

from tests.liveserver import LiveServer, live_server
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


def logged(server: LiveServer, path: str) -> dict[str, object]:
    """The last log line for ``path``; it is written just after the response, so wait for it."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
        entries = [e for e in lines if e.get("path") == path]
        if entries or time.monotonic() > deadline:
            assert entries, f"no log line for {path}"
            return entries[-1]
        time.sleep(0.02)


def test_one_json_log_line_per_request(client: httpx.Client, server: LiveServer) -> None:
    response = client.get("/v2/logged/repo/tags/list")
    entry = logged(server, "/v2/logged/repo/tags/list")
    assert entry["method"] == "GET"
    assert entry["status"] == 404
    assert entry["repo"] == "logged/repo"
    assert entry["bytes_out"] == len(response.content)
    assert entry["bytes_in"] == 0
    assert entry["level"] == "info"
    assert entry["duration_ms"] >= 0


def test_log_line_counts_bytes_received(client: httpx.Client, server: LiveServer) -> None:
    data = b"x" * 5000
    response = client.post(
        "/v2/logged/push/blobs/uploads/",
        params={"digest": "sha256:" + hashlib.sha256(data).hexdigest()},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201
    entry = logged(server, "/v2/logged/push/blobs/uploads/")
    assert (entry["method"], entry["status"], entry["bytes_in"]) == ("POST", 201, 5000)


def test_request_lines_follow_the_configured_level(tmp_path: Path) -> None:
    with live_server(tmp_path, {"log": {"level": "warn"}}) as quiet:
        assert httpx.get(quiet.url + "/v2/").status_code == 200
        assert httpx.get(quiet.url + "/v2/x/tags/list").status_code == 404
    assert not [line for line in quiet.log_lines() if line.startswith("{")]
