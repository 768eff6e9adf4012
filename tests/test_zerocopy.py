"""The ASGI zero-copy send extension of ocireg's HTTP protocol (``ocireg.zerocopy``), driven
through uvicorn with the protocol ocireg serves plain TCP with, and an ASGI app that sends
files by ``http.response.zerocopysend``; the client reads raw HTTP from a socket, so what is
on the wire (headers, chunk framing, the connection kept or closed) is what is checked."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ocireg.connections import ConnectionGuard, protocol_factory
from ocireg.nowebsocket import RefuseWebSocket
from ocireg.relay import ShortBodyError, SocketRelay
from ocireg.storage.socketbody import SocketBody
from ocireg.zerocopy import SENT
from tests.liveserver import free_port
from tests.rawhttp import Reader, connect, request, reset

EXTENSION = "http.response.zerocopysend"
SERVER_THREAD = "uvicorn-under-test"
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@contextmanager
def serving(app: App, loop: str = "uvloop") -> Iterator[int]:
    """uvicorn with ocireg's plain-TCP protocol (and its WebSocket refusal), serving ``app``
    on a free port."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=protocol_factory(ConnectionGuard(None, None)),
        ws=RefuseWebSocket,
        loop=loop,
        lifespan="off",
        log_level="critical",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name=SERVER_THREAD)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(3 << 20) + b"tail")
    return path


def file_app(path: Path, sent: list[BaseException | None], **message: Any) -> App:
    """An app answering every request with the file (``message`` the zero-copy message's
    keys; ``length`` the Content-Length, None for none), after a short body part; what its
    last send raised, or None, goes to ``sent``."""
    length = message.pop("length", len(b"part:") + path.stat().st_size)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        offers = EXTENSION in scope.get("extensions", {})
        headers = [(b"x-zero-copy", str(offers).encode())]
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"part:", "more_body": True})
        with open(path, "rb") as file:
            try:
                await send({"type": EXTENSION, "file": file, "more_body": False, **message})
            except BaseException as error:
                sent.append(error)
                raise
            sent.append(None)

    return app


def test_a_file_follows_a_body_part_and_the_connection_is_kept(blob: Path) -> None:
    sent: list[BaseException | None] = []
    with serving(file_app(blob, sent, offset=0)) as port, connect(port) as sock:
        reader = Reader(sock)
        for _ in range(3):  # one connection: kept alive after each zero-copy response
            sock.sendall(request())
            status, headers, body = reader.response()
            assert (status, headers["x-zero-copy"]) == (200, "True")
            assert body == b"part:" + blob.read_bytes()
        sock.sendall(request("HEAD"))
        status, headers, _ = reader.response(head=True)
        assert headers["content-length"] == str(5 + blob.stat().st_size)
        sock.sendall(request())  # nothing was sent for the HEAD: the next answer is whole
        assert reader.response()[2] == b"part:" + blob.read_bytes()
    assert sent == [None] * 5


def test_a_range_of_the_file_is_sent_from_the_offset(blob: Path) -> None:
    data = blob.read_bytes()
    app = file_app(blob, [], offset=1000, count=70_000, length=5 + 70_000)
    with serving(app) as port, connect(port) as sock:
        sock.sendall(request())
        assert Reader(sock).response()[2] == b"part:" + data[1000:71_000]


def test_without_an_offset_the_file_position_is_used_and_moves_on(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"0123456789")
    positions = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"7")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with open(path, "rb", buffering=0) as file:
            file.seek(3)
            await send({"type": EXTENSION, "file": file.fileno(), "count": 4, "more_body": True})
            positions.append(file.tell())
            await send({"type": EXTENSION, "file": file, "more_body": False})  # to the end
            positions.append(file.tell())

    with serving(app) as port, connect(port) as sock:
        sock.sendall(request())
        assert Reader(sock).response()[2] == b"3456789"
    assert positions == [7, 10]


def test_without_an_offset_a_buffered_file_is_sent_from_where_it_was_read(
    tmp_path: Path,
) -> None:
    """A buffered file read a little has read ahead: its position, not its descriptor's,
    says where the part starts, and the part moves it on."""
    path = tmp_path / "file"
    path.write_bytes(b"0123456789")
    positions = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with open(path, "rb") as file:
            assert file.read(3) == b"012"  # the descriptor is at the end of the file now
            await send({"type": EXTENSION, "file": file, "count": 4, "more_body": False})
            positions.append(file.tell())
            assert file.read(1) == b"7"

    with serving(app) as port, connect(port) as sock:
        sock.sendall(request())
        assert Reader(sock).response()[2] == b"3456"
    assert positions == [7]


def test_without_a_content_length_the_file_is_one_chunk(blob: Path) -> None:
    with serving(file_app(blob, [], length=None)) as port, connect(port) as sock:
        reader = Reader(sock)
        sock.sendall(request())
        _, headers, body = reader.response()
        assert headers["transfer-encoding"] == "chunked"
        assert body == b"part:" + blob.read_bytes()
        sock.sendall(request())  # the chunked framing ended where it should: kept alive
        assert reader.response()[2] == b"part:" + blob.read_bytes()


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"length": 100}, "longer than Content-Length"),
        ({"offset": 0, "count": 10 << 20, "length": 5 + (10 << 20)}, "file ended"),
    ],
)
def test_more_than_content_length_or_than_the_file_fails_and_closes(
    blob: Path, message: dict[str, Any], error: str
) -> None:
    sent: list[BaseException | None] = []
    with serving(file_app(blob, sent, **message)) as port, connect(port) as sock:
        reader = Reader(sock)
        sock.sendall(request())
        status = reader.line()
        assert status.startswith(b"HTTP/1.1 200")
        while reader.fill():  # the response is cut off: the connection closes
            pass
        assert len(reader.buffer) < 5 + int(message["length"])
    assert isinstance(sent[0], RuntimeError)
    assert error in str(sent[0])


def test_a_client_leaving_half_way_ends_the_send_quietly(tmp_path: Path) -> None:
    """The client reads a little, stops (the send waits for the full socket), then resets the
    connection: the send returns as uvicorn's does for a body, and the server goes on."""
    big = tmp_path / "big"
    big.write_bytes(os.urandom(64 << 20))
    sent: list[BaseException | None] = []
    with serving(file_app(big, sent, offset=0)) as port:
        with connect(port) as sock:
            sock.sendall(request())
            got = 0
            while got < 1 << 20:
                got += len(sock.recv(1 << 16))
            time.sleep(0.3)  # the socket fills up: the send waits for it to be writable
            assert not sent
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        deadline = time.monotonic() + 10
        while not sent:
            assert time.monotonic() < deadline, "the send did not end"
            time.sleep(0.01)
        assert sent == [None]  # as uvicorn does for a body: a disconnect is no error
        with connect(port) as sock:  # the server serves the next connection
            sock.sendall(request())
            assert Reader(sock).response()[2] == b"part:" + big.read_bytes()


def test_a_file_waits_for_the_body_parts_still_in_the_transport(tmp_path: Path) -> None:
    """Body parts the socket could not take yet stay in the transport's buffer: the file's
    bytes must follow them, not overtake them."""
    path = tmp_path / "file"
    path.write_bytes(os.urandom(4 << 20))
    before, small, after = os.urandom(16 << 20), os.urandom(10_000), os.urandom(1 << 20)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        length = len(before) + len(small) + (4 << 20) + len(after)
        headers = [(b"content-length", str(length).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": before, "more_body": True})
        # the socket is full once the first part is out: this part waits in the transport
        await send({"type": "http.response.body", "body": small, "more_body": True})
        with open(path, "rb") as file:
            await send({"type": EXTENSION, "file": file, "more_body": True})
        await send({"type": "http.response.body", "body": after, "more_body": False})

    with serving(app) as port, connect(port) as sock:
        sock.sendall(request())
        time.sleep(0.3)  # the first part fills the socket; the rest waits in the transport
        reader = Reader(sock)
        whole = before + small + path.read_bytes() + after
        assert reader.response()[2] == whole
        sock.sendall(request())  # and again on the kept connection
        assert reader.response()[2] == whole


def test_a_file_sendfile_refuses_is_read_and_written_instead(
    blob: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EINVAL, "sendfile not supported by this filesystem")

    read_in: set[str] = set()
    real_pread = os.pread

    def pread(*args: Any) -> bytes:
        read_in.add(threading.current_thread().name)
        return real_pread(*args)

    monkeypatch.setattr(os, "sendfile", refuse)
    monkeypatch.setattr(os, "pread", pread)
    sent: list[BaseException | None] = []
    with serving(file_app(blob, sent, offset=0)) as port, connect(port) as sock:
        reader = Reader(sock)
        for _ in range(2):
            sock.sendall(request())
            assert reader.response()[2] == b"part:" + blob.read_bytes()
    assert sent == [None, None]
    # read in worker threads, not on the event loop's (the server's) thread
    assert read_in and SERVER_THREAD not in read_in


_UPGRADE = request(
    "GET",
    "/ws",
    {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    },
)


async def _until_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("ending", ["pipelined request", "upgrade"])
def test_a_part_sent_after_the_connection_closed_never_reaches_another_client(
    tmp_path: Path, loop: str, ending: str
) -> None:
    """A response sends half its file, and its connection closes while a pipelined request
    waits behind it (uvicorn marks only that one disconnected) or while a WebSocket upgrade
    takes it over (this protocol hears of no close). The next connection is likely given the
    closed one's descriptor number: the second half must not be sent into it."""
    path = tmp_path / "secret"
    path.write_bytes(b"S" * 100)
    go = threading.Event()
    sent: list[BaseException | None] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":  # the next client's answer, sent slowly
            headers = [(b"content-length", b"5")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await asyncio.sleep(0.5)
            await send({"type": "http.response.body", "body": b"hello"})
            return
        if scope["path"] != "/a":
            return
        # an app that watches for the client leaving, as starlette's streaming responses do
        listening = asyncio.ensure_future(_until_disconnect(receive))
        headers = [(b"content-length", b"100")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with open(path, "rb") as file:
            half = {"type": EXTENSION, "file": file, "offset": 0, "count": 50, "more_body": True}
            await send(half)
            while not go.is_set():
                await asyncio.sleep(0.01)
            try:
                await send({**half, "offset": 50, "more_body": False})
            except BaseException as error:
                sent.append(error)
                raise
            sent.append(None)
        await listening

    with serving(app, loop) as port:
        first = connect(port)
        if ending == "upgrade":
            first.sendall(request("GET", "/a"))
            reader = Reader(first)
            reader.line()
            while b"S" * 50 not in reader.buffer:
                assert reader.fill()
            first.sendall(_UPGRADE)
            while reader.fill():  # the upgrade is refused and the connection closed
                pass
            first.close()
        else:
            first.sendall(request("GET", "/a") + request("GET", "/b"))
            time.sleep(0.2)
            reset(first)
        time.sleep(0.2)  # the server closes its end: the descriptor number is free again
        with connect(port) as second:
            second.sendall(request("GET", "/slow"))
            time.sleep(0.1)
            go.set()
            status, _, body = Reader(second).response()
            assert (status, body) == (200, b"hello")
        _wait(lambda: bool(sent), "the first response's send did not end")
    assert sent == [None]  # as for a body sent after a disconnect: quietly nothing


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_an_upgrade_behind_a_send_to_a_full_socket_ends_the_send(tmp_path: Path, loop: str) -> None:
    """A client that reads nothing fills the socket, then asks for an upgrade: the refusal
    closes the connection, and the send waiting for the socket must end rather than hold the
    connection (its descriptor, the file) for ever."""
    big = tmp_path / "big"
    big.write_bytes(os.urandom(64 << 20))
    sent: list[BaseException | None] = []
    with serving(file_app(big, sent, offset=0), loop) as port, connect(port) as sock:
        sock.sendall(request())
        time.sleep(0.3)  # the socket fills up: the send waits for it to be writable
        assert not sent
        sock.sendall(_UPGRADE)
        _wait(lambda: bool(sent), "the send did not end")
    assert sent == [None]


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_client_gone_while_body_parts_drain_ends_the_send_quietly(
    tmp_path: Path, loop: str
) -> None:
    """The connection closes while the file waits for body parts still in the transport:
    the send must not touch the closed connection's descriptor (no error, no stray bytes)."""
    path = tmp_path / "file"
    path.write_bytes(b"S" * 100)
    sent: list[BaseException | None] = []
    before = 32 << 20

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", str(before + 100).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"x" * before, "more_body": True})
        try:
            message = {"file": os.open(path, os.O_RDONLY), "offset": 0, "count": 100}
            await send({"type": EXTENSION, **message, "more_body": False})
        except BaseException as error:
            sent.append(error)
            raise
        sent.append(None)

    with serving(app, loop) as port:
        sock = connect(port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(request())
        time.sleep(0.3)
        reset(sock)
        _wait(lambda: bool(sent), "the send did not end")
        with connect(port) as again:  # and the server goes on
            again.sendall(request())
            assert len(Reader(again).response()[2]) == before + 100
    assert sent == [None, None]


def relay_app(
    data: bytes,
    sent: list[BaseException | None],
    count: int | None = None,
    within: float | None = None,
    bodies: list[SocketBody] | None = None,
) -> App:
    """An app answering every request with ``data`` relayed from a socket that a thread fills
    in pieces, pausing now and then (so the relay finds S3 silent as well as the client's
    socket full), after a short body part. ``count``: the relay's length (the data's unless
    given: more is a body that ends short); ``within``: seconds the app gives the send before
    it cancels it (as ``http.writeTimeout`` does); ``bodies`` collects each relay's body."""
    count = len(data) if count is None else count

    def fill(s3: socket.socket) -> None:
        with s3, contextlib.suppress(OSError):  # a relay ended first: a closed peer
            for start in range(0, len(data), 256 << 10):
                s3.sendall(data[start : start + (256 << 10)])
                if start % (2 << 20) == 0:
                    time.sleep(0.01)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", str(5 + count).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"part:", "more_body": True})
        ours, s3 = socket.socketpair()
        ours.setblocking(False)
        body = SocketBody(ours, b"", count, read_timeout=10)
        if bodies is not None:
            bodies.append(body)
        threading.Thread(target=fill, args=(s3,), daemon=True).start()
        relay = SocketRelay(body)
        message = {"type": EXTENSION, "relay": relay, "count": count}
        try:
            async with asyncio.timeout(within):
                await send(message)
        except BaseException as error:
            error.add_note(f"sent {message[SENT]}")
            sent.append(error)
            raise
        finally:
            relay.stop()
        sent.append(None)

    return app


def test_a_relay_is_sent_exactly_and_the_connection_is_kept() -> None:
    data = os.urandom(8 << 20)
    sent: list[BaseException | None] = []
    with serving(relay_app(data, sent)) as port, connect(port) as sock:
        reader = Reader(sock)
        for _ in range(3):  # one connection: kept alive after each relayed response
            sock.sendall(request())
            status, _, body = reader.response()
            assert (status, body == b"part:" + data) == (200, True)
    assert sent == [None] * 3


def test_a_relay_whose_body_ends_short_fails_and_closes() -> None:
    data = os.urandom(3 << 20)
    sent: list[BaseException | None] = []
    with serving(relay_app(data, sent, count=len(data) + 10)) as port, connect(port) as sock:
        reader = Reader(sock)
        sock.sendall(request())
        assert reader.line().startswith(b"HTTP/1.1 200")
        while reader.line():  # the headers
            pass
        while reader.fill():  # what the body held, then the connection closes
            pass
        assert reader.buffer == b"part:" + data
    assert isinstance(sent[0], ShortBodyError)
    assert "ended after" in str(sent[0])


def test_a_relay_cut_off_by_its_app_stops_and_frees_its_body() -> None:
    """The app cancels the send (``http.writeTimeout``) while the client reads nothing: the
    relay's thread stops, its body's socket is closed, and the connection with it."""
    data = os.urandom(32 << 20)
    sent: list[BaseException | None] = []
    bodies: list[SocketBody] = []
    app = relay_app(data, sent, within=0.5, bodies=bodies)
    with serving(app) as port, connect(port) as sock:
        sock.sendall(request())
        _wait(lambda: bool(sent), "the send was not cut off")
        assert isinstance(sent[0], TimeoutError)
        counted = int(sent[0].__notes__[0].removeprefix("sent "))
        assert counted > 0  # what the request log counts: what the socket took so far
        _wait(lambda: bodies[0].sock.fileno() == -1, "the relay outlived its cut-off")
        reader = Reader(sock)
        while reader.fill():  # what was sent, then the connection closes
            pass
        assert 5 < len(reader.buffer) < len(data)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_an_upgrade_behind_a_relay_to_a_full_socket_stops_the_relay(loop: str) -> None:
    """As for a file: a client that reads nothing, then asks for an upgrade, has its
    connection closed by the refusal; the relay waiting for room in the socket stops, and
    frees its body, rather than hold them for ever."""
    data = os.urandom(64 << 20)
    sent: list[BaseException | None] = []
    bodies: list[SocketBody] = []
    with serving(relay_app(data, sent, bodies=bodies), loop) as port, connect(port) as sock:
        sock.sendall(request())
        time.sleep(0.5)  # the socket fills up: the relay waits for room in it
        assert not sent
        sock.sendall(_UPGRADE)
        _wait(lambda: bool(sent), "the send did not end")
        _wait(lambda: bodies[0].sock.fileno() == -1, "the relay outlived its connection")
    assert sent == [None]  # as for a file sent after a disconnect: quietly nothing
