"""``ocireg serve`` as an operator starts it: the embedded default, TLS, durable commits."""

from __future__ import annotations

import json
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest

from tests.certs import issue_server, make_ca
from tests.liveserver import live_server, running
from tests.oci import image_manifest, put_manifest


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_embedded_default_serves_5000_from_ocireg_data(tmp_path: Path) -> None:
    assert _port_free(5000), "the embedded default needs 127.0.0.1:5000; something else holds it"
    with (
        running(["serve"], tmp_path, "http://127.0.0.1:5000", tmp_path / "ocireg-data") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        manifest = image_manifest(client, "demo/app")
        put_manifest(client, "demo/app", "v1", manifest)
        layout = server.root / "demo" / "app"
        index = json.loads((layout / "index.json").read_text())
        assert index["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "v1"}
        assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    (started,) = [line for line in server.log_events() if line["msg"] == "ocireg started"]
    assert started["address"] == "http://127.0.0.1:5000"
    assert (started["root"], started["workers"]) == (str(server.root), 1)


def test_tls_serves_https_only(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "ca")
    server_cert = issue_server(ca, tmp_path)
    tls = {"http": {"tls": {"cert": str(server_cert.cert_path), "key": str(server_cert.key_path)}}}
    with live_server(tmp_path / "tls", tls) as server:
        assert server.url.startswith("https://")
        started = [line for line in server.log_events() if line["msg"] == "ocireg started"]
        assert started[0]["address"] == server.url  # https, and the port it listens on
        trust = ssl.create_default_context(cafile=ca.cert_path)
        response = httpx.get(server.url + "/v2/", verify=trust)
        assert response.status_code == 200
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url.replace("https://", "http://") + "/v2/", timeout=5)


def test_commit_true_pushes_and_reads_back(tmp_path: Path) -> None:
    with (
        live_server(tmp_path, {"storage": {"commit": True}}) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        manifest = image_manifest(client, "durable")
        digest = put_manifest(client, "durable", "v1", manifest).headers["Docker-Content-Digest"]
        assert client.get(f"/v2/durable/manifests/{digest}").status_code == 200


def _rounds(lines: list[str]) -> list[dict[str, object]]:
    found = [json.loads(line) for line in lines if line.startswith("{")]
    return [line for line in found if line.get("msg") == "scheduler round done"]


def test_idle_is_silent_at_info(tmp_path: Path) -> None:
    """meta-flush runs every second; only a round that did something is an info line."""
    with live_server(tmp_path) as live, httpx.Client(base_url=live.url) as client:
        time.sleep(3.5)
        assert _rounds(live.log_lines()) == []
        put_manifest(client, "quiet/app", "v1", image_manifest(client, "quiet/app"))
        deadline = time.monotonic() + 10
        while not _rounds(live.log_lines()):
            assert time.monotonic() < deadline, "the flush of a push was not logged"
            time.sleep(0.2)
        time.sleep(2.5)
        assert [round["job"] for round in _rounds(live.log_lines())] == ["meta-flush"]


def test_only_the_first_start_checks_the_spec(tmp_path: Path) -> None:
    """The check against the OpenAPI schema leaves a mark in the root and in the user's
    cache; a restart finds it and skips the check (which would write the mark again)."""
    cache = tmp_path / "cache"
    marks = tmp_path / "data" / ".ocireg" / "spec-checked"
    env = {"XDG_CACHE_HOME": str(cache)}
    with live_server(tmp_path, env=env) as server:
        assert httpx.get(server.url + "/v2/").status_code == 200
    (mark,) = marks.iterdir()
    assert [each.name for each in (cache / "ocireg" / "spec-checked").iterdir()] == [mark.name]
    first = mark.stat().st_mtime_ns
    with live_server(tmp_path, {"http": {"workers": 2}}, env=env) as server:
        assert httpx.get(server.url + "/v2/").status_code == 200
    assert [each.name for each in marks.iterdir()] == [mark.name]
    assert mark.stat().st_mtime_ns == first
