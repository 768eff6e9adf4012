"""The request log of a live server: one JSON line per request, and a refused request's line
carries the OCI error code and reason the client was sent, whichever layer refused it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest

from ocireg.reqlog import RequestLogMiddleware
from ocireg.zerocopy import SENT
from tests.auth.registries import write_htpasswd
from tests.liveserver import LiveServer, live_server
from tests.oci import canonical, error_codes, push_blob, sha256

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Basic auth, and no http.compat: Docker manifests are refused."""
    directory = tmp_path_factory.mktemp("reqlog")
    htpasswd = write_htpasswd(directory / "htpasswd", {"alice": "alice-pw"})
    extra = {"http": {"compat": [], "auth": {"htpasswd": {"path": str(htpasswd)}}}}
    with live_server(directory, extra) as live:
        yield live


def _request_line(server: LiveServer, method: str, path: str, status: int) -> dict[str, Any]:
    """The request log's line for ``method path`` answered ``status`` (written just after the
    answer)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [
            line
            for line in server.log_events()
            if line["msg"] == "request"
            and (line["method"], line["path"], line["status"]) == (method, path, status)
        ]
        if lines:
            assert len(lines) == 1, lines
            return lines[0]
        assert time.monotonic() < deadline, f"no request line for {method} {path}"
        time.sleep(0.1)


def test_a_refused_docker_manifest_logs_its_code_and_reason(registry: LiveServer) -> None:
    with httpx.Client(base_url=registry.url, auth=("alice", "alice-pw"), timeout=30) as client:
        config = b'{"architecture":"amd64","os":"linux"}'
        push_blob(client, "podman/app", config)
        document = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [],
        }
        refused = client.put(
            "/v2/podman/app/manifests/v1",
            content=canonical(document),
            headers={"Content-Type": DOCKER_MANIFEST},
        )
    assert refused.status_code == 400
    reason = refused.json()["errors"][0]["detail"]["reason"]
    assert "docker2s2" in reason
    line = _request_line(registry, "PUT", "/v2/podman/app/manifests/v1", 400)
    assert (line["user"], line["repo"]) == ("alice", "podman/app")
    assert (line["error"], line["reason"]) == ("MANIFEST_INVALID", reason)


def test_a_refusal_by_authentication_logs_its_code(registry: LiveServer) -> None:
    answer = httpx.get(registry.url + "/v2/podman/app/tags/list")
    assert (answer.status_code, error_codes(answer)) == (401, ["UNAUTHORIZED"])
    line = _request_line(registry, "GET", "/v2/podman/app/tags/list", 401)
    assert (line["user"], line["error"]) == (None, "UNAUTHORIZED")
    assert line["reason"] == answer.json()["errors"][0]["message"]  # no detail.reason: the message


def test_a_head_logs_the_code_its_client_never_sees(registry: LiveServer) -> None:
    path = "/v2/podman/app/manifests/missing"
    answer = httpx.head(registry.url + path, auth=("alice", "alice-pw"))
    assert (answer.status_code, answer.content) == (404, b"")
    assert _request_line(registry, "HEAD", path, 404)["error"] == "MANIFEST_UNKNOWN"


def test_an_answer_that_is_no_refusal_has_no_error(registry: LiveServer) -> None:
    assert httpx.get(registry.url + "/v2/", auth=("alice", "alice-pw")).status_code == 200
    line = _request_line(registry, "GET", "/v2/", 200)
    assert line["user"] == "alice"
    assert "error" not in line and "reason" not in line


def _logged_after_a_failed_part(
    caplog: pytest.LogCaptureFixture, body: bytes, sent: int | None
) -> dict[str, Any]:
    """The request line of an answer whose zero-copy part of 1000 bytes (after ``body``)
    fails in the connection, which says it sent ``sent`` of them (None: says nothing)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if body:
            await send({"type": "http.response.body", "body": body, "more_body": True})
        part = {"file": 0, "offset": 0, "count": 1000, "more_body": False}
        await send({"type": "http.response.zerocopysend", **part})

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.zerocopysend":
            if sent is not None:
                message[SENT] = sent
            raise RuntimeError(f"file ended after {sent or 0} of 1000 bytes of a zero-copy send")

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "GET", "path": "/v2/", "headers": [], "client": None}
    caplog.set_level(logging.INFO, logger="ocireg.access")
    with pytest.raises(RuntimeError, match="file ended"):
        asyncio.run(RequestLogMiddleware(app)(scope, receive, send))
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ocireg.access"]
    return cast(dict[str, Any], line)


def test_a_zero_copy_part_that_failed_is_not_counted_as_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """bytes_out counts a zero-copy part once the connection sent it: one that raised (its
    file ended early) sent nothing the log may claim."""
    line = _logged_after_a_failed_part(caplog, b"head", None)
    assert (line["status"], line["bytes_out"]) == (200, 4)


def test_a_zero_copy_part_cut_short_counts_what_was_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A part cut short (its source ended, its client left) counts the bytes the connection
    says its socket took, not none and not all."""
    line = _logged_after_a_failed_part(caplog, b"", 600)
    assert (line["status"], line["bytes_out"]) == (200, 600)
