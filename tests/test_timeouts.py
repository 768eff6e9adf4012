"""``http.readTimeout`` and ``http.writeTimeout`` on a live registry (zot's keys): a body sent
too slowly gets 408, a response not read in time is cut off, and a prompt client is unaffected.
``http.bodyStallTimeout``: a body that stops gets 408, one that keeps moving is never cut."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.liveserver import live_server
from tests.oci import push_blob, sha256


def _connect(url: str, receive_buffer: int | None = None) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((parts.hostname, parts.port))
    sock.settimeout(10)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_body_slower_than_read_timeout_gets_408(tmp_path: Path) -> None:
    with live_server(tmp_path, {"http": {"readTimeout": "1s"}}) as live:
        with httpx.Client(base_url=live.url) as client:
            location = client.post("/v2/slow/app/blobs/uploads/").headers["Location"]
            prompt = client.patch(location, content=b"x" * 1000)  # well within the limit
            assert prompt.status_code == 202
        with _connect(live.url) as sock:
            head = (
                f"PATCH {urlsplit(prompt.headers['Location']).path} HTTP/1.1\r\n"
                "Host: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n"
            )
            sock.sendall(head.encode() + b"y" * 10)
            time.sleep(2)
            answer = _read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]


def test_a_response_not_read_within_write_timeout_is_cut_off(tmp_path: Path) -> None:
    blob = bytes(range(256)) * (64 * 1024)  # 16 MiB: more than the socket buffers hold
    with live_server(tmp_path, {"http": {"writeTimeout": "1s"}}) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            digest = push_blob(client, "big/app", blob)
            assert client.get(f"/v2/big/app/blobs/{digest}").content == blob  # prompt: whole
        with _connect(live.url, receive_buffer=64 * 1024) as sock:
            request = f"GET /v2/big/app/blobs/{digest} HTTP/1.1\r\nHost: x\r\n\r\n"
            sock.sendall(request.encode())
            time.sleep(2.5)  # a reader that stalls past the limit
            received = _read_all(sock)
        assert received.startswith(b"HTTP/1.1 200 ")
        assert len(received) < len(blob)
        cut = [line for line in live.log_events() if "cut off by http.writeTimeout" in line["msg"]]
    # a configured limit doing its job: one warning line naming the request, not an error
    # with a traceback
    assert [(line["level"], line["msg"]) for line in cut] == [
        ("warn", f"response to GET /v2/big/app/blobs/{digest} cut off by http.writeTimeout (1 s)")
    ]
    assert "exception" not in cut[0]


def _steadily(chunks: int, size: int, pause: float) -> Iterator[bytes]:
    for n in range(chunks):
        time.sleep(pause)
        yield bytes([n]) * size


def test_a_stalled_body_gets_408_and_a_moving_one_is_never_cut(tmp_path: Path) -> None:
    # Every connection timeout at 1 s, the upload taking 4 s: only a stall may end it.
    quick = {"bodyStallTimeout": "1s", "readHeaderTimeout": "1s", "idleTimeout": "1s"}
    with live_server(tmp_path, {"http": quick}) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            location = client.post("/v2/steady/app/blobs/uploads/").headers["Location"]
            started = time.monotonic()
            patched = client.patch(location, content=_steadily(20, 256 * 1024, 0.2))
            assert time.monotonic() - started > 3
            assert patched.status_code == 202, patched.text
            data = b"".join(_steadily(20, 256 * 1024, 0))
            digest = sha256(data)
            done = client.put(patched.headers["Location"], params={"digest": digest})
            assert done.status_code == 201, done.text
            assert client.get(f"/v2/steady/app/blobs/{digest}").content == data
            location = client.post("/v2/steady/app/blobs/uploads/").headers["Location"]
        with _connect(live.url) as sock:
            head = (
                f"PATCH {urlsplit(location).path} HTTP/1.1\r\n"
                "Host: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n"
            )
            sock.sendall(head.encode() + b"y" * 10)
            started = time.monotonic()
            answer = _read_all(sock)  # the server answers and closes once the body stalls
            assert 0.8 < time.monotonic() - started < 5
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
