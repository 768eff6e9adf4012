"""Blob GET with zero-copy sends (``ocireg.zerocopy``): over plain TCP a live registry sends a
stored blob from its file by ``sendfile``; over TLS it sends it as before. What a client sees
must not change: the exact bytes, whole or a range, HEAD's headers, the connection kept alive
after the answer, and a client that leaves half-way costing the next one nothing. The ASGI
app itself is asked too, to show which messages carry the bytes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ocireg.config import Config
from ocireg.storage.filesystem import FilesystemDriver
from tests.certs import issue_server, make_ca
from tests.liveserver import LiveServer, live_server
from tests.oci import push_blob
from tests.rawhttp import Reader, connect, request, reset

MiB = 1 << 20
ZERO_COPY = "http.response.zerocopysend"


Stored = tuple[LiveServer, dict[str, bytes]]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    """A live registry holding a small and a large blob of random bytes, by digest."""
    directory = tmp_path_factory.mktemp("zerocopy")
    with live_server(directory) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        blobs = {}
        for data in (os.urandom(1000), os.urandom(40 * MiB + 7)):
            blobs[push_blob(client, "zc/repo", data)] = data
        yield server, blobs


def _port(server: LiveServer) -> int:
    port = urlsplit(server.url).port
    assert port is not None
    return port


def test_blobs_small_and_large_come_whole_on_one_kept_connection(
    stored: Stored,
) -> None:
    server, blobs = stored
    with connect(_port(server)) as sock:
        reader = Reader(sock)
        for _ in range(2):  # the connection is kept alive after each zero-copy answer
            for digest, data in blobs.items():
                sock.sendall(request("GET", f"/v2/zc/repo/blobs/{digest}"))
                status, headers, body = reader.response()
                assert status == 200
                assert headers["docker-content-digest"] == digest
                assert headers["content-length"] == str(len(data))
                assert body == data


def test_ranges_and_head(stored: Stored) -> None:
    server, blobs = stored
    digest, data = max(blobs.items(), key=lambda item: len(item[1]))
    path = f"/v2/zc/repo/blobs/{digest}"
    with connect(_port(server)) as sock:
        reader = Reader(sock)
        for header, start, end in [
            ("bytes=0-0", 0, 1),
            ("bytes=1000-", 1000, len(data)),
            ("bytes=-77", len(data) - 77, len(data)),
            (f"bytes={20 * MiB}-{30 * MiB}", 20 * MiB, 30 * MiB + 1),
        ]:
            sock.sendall(request("GET", path, {"Range": header}))
            status, headers, body = reader.response()
            assert status == 206
            assert headers["content-range"] == f"bytes {start}-{end - 1}/{len(data)}"
            assert body == data[start:end]
        sock.sendall(request("GET", path, {"Range": "bytes=0-9,100-109"}))  # multipart: as before
        status, headers, body = reader.response()
        assert status == 206
        assert headers["content-type"].startswith("multipart/byteranges")
        assert data[:10] in body and data[100:110] in body
        sock.sendall(request("HEAD", path))
        status, headers, _ = reader.response(head=True)
        assert (status, headers["content-length"]) == (200, str(len(data)))
        sock.sendall(request("GET", path, {"Range": "bytes=5-9"}))  # the HEAD sent no body
        assert reader.response()[2] == data[5:10]


def test_a_client_leaving_half_way_leaves_the_registry_serving(
    stored: Stored,
) -> None:
    server, blobs = stored
    digest, data = max(blobs.items(), key=lambda item: len(item[1]))
    for _ in range(3):
        sock = connect(_port(server))
        sock.sendall(request("GET", f"/v2/zc/repo/blobs/{digest}"))
        got = 0
        while got < 2 * MiB:
            got += len(sock.recv(MiB))
        time.sleep(0.2)  # the registry's send waits for the full socket
        reset(sock)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        answer = client.get(f"/v2/zc/repo/blobs/{digest}")
        assert answer.status_code == 200
        assert answer.content == data
    requests = [e for e in server.log_events() if e["msg"] == "request" and e["status"] == 200]
    assert requests[-1]["bytes_out"] == len(data)  # the request log counts zero-copy bytes


def test_tls_serves_blobs_as_before(tmp_path: Path) -> None:
    """The kernel's sendfile cannot encrypt: over TLS the blob goes through the TLS layer (a
    sendfile there would put clear bytes on the wire, which no client could decrypt)."""
    ca = make_ca(tmp_path, "ca")
    cert = issue_server(ca, tmp_path)
    tls = {"http": {"tls": {"cert": str(cert.cert_path), "key": str(cert.key_path)}}}
    data = os.urandom(5 * MiB + 3)
    trust = ssl.create_default_context(cafile=ca.cert_path)
    with (
        live_server(tmp_path / "tls", tls) as server,
        httpx.Client(base_url=server.url, verify=trust, timeout=60) as client,
    ):
        digest = push_blob(client, "zc/tls", data)
        for _ in range(2):
            assert client.get(f"/v2/zc/tls/blobs/{digest}").content == data
        ranged = client.get(f"/v2/zc/tls/blobs/{digest}", headers={"Range": "bytes=10-19"})
        assert ranged.content == data[10:20]


def _app(root: Path) -> Any:
    with warnings.catch_warnings():
        # connexion's imports use deprecated jsonschema and starlette names; not ours to fix
        warnings.simplefilter("ignore")
        from ocireg.app import create_app

    config = Config.model_validate({"storage": {"rootDirectory": str(root)}})
    return create_app(config, FilesystemDriver(str(root)))


async def _messages(app: Any, path: str, zero_copy: bool, **headers: str) -> list[dict[str, Any]]:
    """What the ASGI app sends for a GET of ``path``, with the extension offered or not; a
    zero-copy message's bytes are read from its file while it is still open."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"registry"),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "extensions": {ZERO_COPY: {}} if zero_copy else {},
    }
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == ZERO_COPY:
            message = {
                **message,
                "bytes": os.pread(message["file"], message["count"], message["offset"]),
            }
        sent.append(message)
        if message["type"] != "http.response.start" and not message.get("more_body", False):
            done.set()

    await app(scope, receive, send)
    return sent


def test_the_app_sends_a_stored_blob_by_zero_copy_only_when_offered(tmp_path: Path) -> None:
    app = _app(tmp_path / "root")
    data = os.urandom(3 * MiB + 1)
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            answer = await client.post(
                "/v2/zc/app/blobs/uploads/", params={"digest": digest}, content=data
            )
            assert answer.status_code == 201
        path = f"/v2/zc/app/blobs/{digest}"
        offered = await _messages(app, path, zero_copy=True)
        assert [m["type"] for m in offered] == ["http.response.start", ZERO_COPY]
        assert (offered[1]["offset"], offered[1]["count"], offered[1]["bytes"]) == (
            0,
            len(data),
            data,
        )
        ranged = await _messages(app, path, zero_copy=True, range="bytes=100-")
        assert ranged[0]["status"] == 206
        assert (ranged[1]["type"], ranged[1]["bytes"]) == (ZERO_COPY, data[100:])
        plain = await _messages(app, path, zero_copy=False)
        assert {m["type"] for m in plain[1:]} == {"http.response.body"}
        assert b"".join(m["body"] for m in plain[1:]) == data

    asyncio.run(scenario())
