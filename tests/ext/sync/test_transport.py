"""The upstream client's threaded HTTP/1.1 transport against a live HTTP server: bodies whole
and in order (by length, chunked, early with the head), kept connections reused and dead ones
replaced, a cut body and a stalled one seen as they are."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ocireg.ext.sync.transport import BLOCK, ThreadedTransport
from tests.liveserver import free_port

BIG = bytes(range(256)) * (3 * BLOCK // 256 + 7)  # 3 blocks and a bit: the last short


@dataclass
class Seen:
    connections: int = 0
    release: threading.Event = field(default_factory=threading.Event)


@contextmanager
def server() -> Iterator[tuple[str, Seen]]:
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            seen.connections += 1

        def _head(self, length: int | None, close: bool = False) -> None:
            self.send_response(200)
            if length is None:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(length))
            if close:
                self.send_header("Connection", "close")
            self.end_headers()

        def do_GET(self) -> None:
            if self.path == "/big":
                self._head(len(BIG))
                self.wfile.write(BIG)
            elif self.path == "/small":
                self._head(5)
                self.wfile.write(b"small")
            elif self.path == "/chunked":
                self._head(None)
                for piece in (BIG[:1000], BIG[1000:]):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            elif self.path == "/cut":
                self._head(len(BIG), close=True)
                self.wfile.write(BIG[: len(BIG) // 2])
                self.close_connection = True
            elif self.path == "/stall":
                self._head(len(BIG))
                self.wfile.write(BIG[:1000])
                self.wfile.flush()
                seen.release.wait(30)
                self.wfile.write(BIG[1000:])
            elif self.path == "/close-after":
                self._head(5, close=True)
                self.wfile.write(b"bye!!")
                self.close_connection = True

        def do_HEAD(self) -> None:
            self._head(len(BIG))

    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        seen.release.set()
        httpd.shutdown()
        httpd.server_close()


def client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, transport=ThreadedTransport(False, 5.0, 5.0))


async def fetch(http: httpx.AsyncClient, path: str) -> tuple[bytes, list[int]]:
    pieces: list[int] = []
    received = bytearray()
    async with http.stream("GET", path) as answer:
        assert answer.status_code == 200
        async for piece in answer.aiter_raw():
            pieces.append(len(piece))
            received += piece
    return bytes(received), pieces


def test_bodies_arrive_whole_in_blocks_and_connections_are_kept() -> None:
    async def run(url: str) -> None:
        async with client(url) as http:
            body, pieces = await fetch(http, "/big")
            assert hashlib.sha256(body).digest() == hashlib.sha256(BIG).digest()
            assert max(pieces) <= BLOCK and len(pieces) >= 4
            assert (await http.get("/small")).content == b"small"
            assert (await http.get("/chunked")).content == BIG
            head = await http.head("/big")
            assert head.status_code == 200 and head.headers["content-length"] == str(len(BIG))
            assert head.content == b""

    with server() as (url, seen):
        asyncio.run(run(url))
        assert seen.connections == 1  # one connection for all four


def test_a_connection_the_server_closed_is_not_used_again() -> None:
    async def run(url: str) -> None:
        async with client(url) as http:
            assert (await http.get("/close-after")).content == b"bye!!"
            assert (await http.get("/small")).content == b"small"
            assert (await http.get("/small")).content == b"small"

    with server() as (url, seen):
        asyncio.run(run(url))
        assert seen.connections == 2


def test_a_cut_body_fails_after_what_arrived() -> None:
    async def run(url: str) -> int:
        received = 0
        async with client(url) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                async with http.stream("GET", "/cut") as answer:
                    async for piece in answer.aiter_raw():
                        received += len(piece)
        return received

    with server() as (url, _):
        assert asyncio.run(run(url)) == len(BIG) // 2


def test_a_stalled_upstreams_bytes_are_handed_on_before_the_rest_comes() -> None:
    async def run(url: str, seen: Seen) -> None:
        async with client(url) as http, http.stream("GET", "/stall") as answer:
            chunks = answer.aiter_raw()
            first = await asyncio.wait_for(chunks.__anext__(), 5)
            assert first == BIG[:1000]
            seen.release.set()
            rest = b"".join([piece async for piece in chunks])
            assert first + rest == BIG

    with server() as (url, seen):
        asyncio.run(run(url, seen))


def test_a_refused_connection_is_a_connect_error() -> None:
    async def run() -> None:
        async with client(f"http://127.0.0.1:{free_port()}") as http:
            with pytest.raises(httpx.ConnectError):
                await http.get("/")

    asyncio.run(run())


def test_a_socket_numbered_past_1023_is_watched() -> None:
    # The server raises its open-file limit, and select() cannot watch such a descriptor: a
    # body read on one must neither hang nor fail.
    import os
    import resource
    import socket

    from ocireg.ext.sync import transport

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    ours, theirs = socket.socketpair()
    try:
        high = socket.socket(fileno=os.dup2(ours.fileno(), 1500))
        try:
            assert transport._still_open(high)  # nothing to read: usable
            assert not transport._more_soon(high)
            theirs.sendall(b"x")
            assert transport._more_soon(high)
            assert not transport._still_open(high)  # something unasked for came
        finally:
            high.close()
    finally:
        ours.close()
        theirs.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
