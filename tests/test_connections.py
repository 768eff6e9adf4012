"""Connection limits on a live registry (issue 21, finding 4): slow headers and idle keep-alive
connections are closed, and one client holding more connections than its cap locks nobody
else out. Clients are told apart by source address: all of 127.0.0.0/8 reaches loopback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ocireg.connections import client_key
from tests.liveserver import LiveServer, live_server

_GET_BASE = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"


def _connect(live: LiveServer, source: str = "127.0.0.1") -> socket.socket:
    parts = urlsplit(live.url)
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect((parts.hostname, parts.port))
    sock.settimeout(10)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def _read_response(sock: socket.socket) -> bytes:
    """One whole response to GET /v2/ (its body is ``{}``)."""
    data = b""
    while not data.endswith(b"\r\n\r\n{}"):
        chunk = sock.recv(1 << 16)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


@contextmanager
def _held(live: LiveServer, source: str, count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        yield [stack.enter_context(_connect(live, source)) for _ in range(count)]


def test_slow_headers_are_cut_off_after_read_header_timeout(tmp_path: Path) -> None:
    with live_server(tmp_path, {"http": {"readHeaderTimeout": "1s"}}) as live:
        with _connect(live) as slow, _connect(live) as silent:
            started = time.monotonic()
            slow.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
            with pytest.raises(OSError):  # a header a byte at a time, until the server hangs up
                for byte in b"X-Slow: " + b"y" * 100:
                    slow.sendall(bytes([byte]))
                    time.sleep(0.1)
            assert time.monotonic() - started < 5
            assert _read_until_closed(slow).startswith(b"HTTP/1.1 408 ")
            assert _read_until_closed(silent) == b""  # connected, sent nothing: closed quietly
        with _connect(live) as prompt:  # a client that sends its headers in time is served
            prompt.sendall(_GET_BASE)
            assert _read_response(prompt).startswith(b"HTTP/1.1 200 ")


def test_idle_keep_alive_connection_is_closed_after_idle_timeout(tmp_path: Path) -> None:
    with live_server(tmp_path, {"http": {"idleTimeout": "1s"}}) as live, _connect(live) as sock:
        for _ in range(3):  # pauses shorter than the timeout keep the connection
            sock.sendall(_GET_BASE)
            assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.5)
        started = time.monotonic()
        assert _read_until_closed(sock) == b""
        assert 0.3 < time.monotonic() - started < 5


def test_a_client_over_its_cap_locks_no_one_else_out(tmp_path: Path) -> None:
    with (
        live_server(tmp_path, {"http": {"maxConnectionsPerClient": 8}}) as live,
        _held(live, "127.0.0.2", 8) as held,
    ):
        for sock in held[:2]:  # connections within the cap are served
            sock.sendall(_GET_BASE)
            assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
        with _held(live, "127.0.0.2", 40) as refused:
            for sock in refused:
                answer = _read_until_closed(sock)
                assert answer.startswith(b"HTTP/1.1 429 "), answer[:60]
                assert b'"code": "TOOMANYREQUESTS"' in answer
                assert b"\r\nretry-after: 1\r\n" in answer
            with httpx.Client(base_url=live.url, timeout=5) as other:
                assert [other.get("/v2/").status_code for _ in range(5)] == [200] * 5
            with _held(live, "127.0.0.3", 8) as third:  # every client has its own cap
                for sock in third:
                    sock.sendall(_GET_BASE)
                    assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
        held.pop().close()  # one closed: its slot is free again
        time.sleep(0.2)
        with _connect(live, "127.0.0.2") as again:
            again.sendall(_GET_BASE)
            assert _read_response(again).startswith(b"HTTP/1.1 200 ")
    refusals = [e["msg"] for e in live.log_events() if "refusing connections from" in e["msg"]]
    assert refusals == ["refusing connections from 127.0.0.2: 8 open, http.maxConnectionsPerClient"]


def test_ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() -> None:
    # Loopback has one IPv6 address, so the grouping is checked on the key itself.
    same_host = {client_key((f"2001:db8:1:2::{n:x}", 443, 0, 0)) for n in (1, 0xFFFF)}
    assert same_host == {"2001:db8:1:2::/64"}
    assert client_key(("2001:db8:1:3::1", 443, 0, 0)) != same_host.pop()
    assert client_key(("::ffff:10.0.0.5", 443, 0, 0)) == client_key(("10.0.0.5", 443))


def test_a_websocket_upgrade_is_refused_with_403(tmp_path: Path) -> None:
    """No route takes a WebSocket: the upgrade gets uvicorn's refusal of an unaccepted one,
    and the server goes on answering."""
    upgrade = (
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with live_server(tmp_path) as live, _connect(live) as sock:
        sock.sendall(upgrade)
        answer = _read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
        assert b"\r\nConnection: close\r\nContent-Length: 0\r\n" in answer
        assert httpx.get(live.url + "/v2/").status_code == 200


def test_refused_websocket_upgrades_free_their_connection_slots(tmp_path: Path) -> None:
    """The refusing protocol takes the connection over from the guarded one: the client's
    slot under http.maxConnectionsPerClient is freed all the same."""
    upgrade = (
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with live_server(tmp_path, {"http": {"maxConnectionsPerClient": 2}}) as live:
        for _ in range(5):  # more upgrades than the cap
            with _connect(live) as sock:
                sock.sendall(upgrade)
                assert _read_until_closed(sock).startswith(b"HTTP/1.1 403 Forbidden\r\n")
        time.sleep(0.2)
        with _connect(live) as sock:
            sock.sendall(_GET_BASE)
            assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
