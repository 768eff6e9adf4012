"""The upstream client's HTTP/1.1 transport: blocking sockets in threads, bodies read straight
from the socket into large blocks.

httpx's own transport (httpcore with h11 over anyio) costs the mirror about 0.8 CPU s per
256 MiB received: every read of at most 256 KiB goes through uvloop's buffer, h11's receive
buffer (two copies) and a few dozen Python calls. A body here is read by a thread of its own,
``recv_into`` a reused 4 MiB block at a time, and handed to the event loop block by block
through a short queue; the event loop sees 64 blocks for 256 MiB and the socket reads release
the GIL (bench/RESULTS.md, issue 15). h11 still writes every request and parses every answer's
head, and reads the bodies that have no ``Content-Length`` (chunked ones).

Connections are kept alive and reused per scheme, host and port; a kept connection that the
server closed meanwhile is noticed before it is used, and a request that finds it dead on the
first byte is sent once more on a new one (the upstream client sends only GET and HEAD).
Failures are httpx's exceptions (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``...),
so the client's retries see what they would see from httpx's transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import select
import socket
import ssl
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import cast

import h11
import httpx

from .blocks import BlockPool

# a body block: what the event loop, the upload path's writer and its hash handle at a time.
# 4 MiB, not 1: a quarter of the hand-offs among the body's thread, the event loop and the
# writer per byte (bench/RESULTS.md, issue 15's sixth pass: the mirror's CPU fell by a tenth)
BLOCK = 1 << 22
_RECV = 1 << 20  # what a head's (or a chunked body's) read asks for at most
SMALL = 1 << 16  # a body up to this size is read with the head, in the same thread hop
QUEUED = 2  # blocks read ahead of the consumer, at most (memory: QUEUED * BLOCK)
# blocks a body reuses (blocks.py): those queued, the ones its consumer keeps (a download keeps
# its last 2 for the pulls that follow it) and those being written and sent
POOLED = 8
_KEPT = 8  # idle connections kept per origin
_SILENCE = 0.005  # seconds without a byte after which a partly filled block is handed on
_HEADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="ocireg-sync-http")
_END = object()
Origin = tuple[str, str, int]


class _Dead(Exception):
    """A kept connection that was closed before it answered a byte."""


@dataclass
class _Connection:
    sock: socket.socket
    origin: Origin
    reused: bool = False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@dataclass
class _Head:
    """An answer's status line and headers, with the body when it came with them."""

    status: int
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    length: int | None  # None: chunked (or read to the end)
    early: bytes  # body bytes already read
    body_done: bool
    parser: h11.Connection


@dataclass
class _Abort:
    """What the event loop can do to a thread blocked on a socket: shut it."""

    connection: _Connection | None = None
    aborted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, connection: _Connection) -> None:
        with self.lock:
            self.connection = connection
            aborted = self.aborted
        if aborted:
            connection.close()
            raise httpx.ReadError("request cancelled")

    def abort(self) -> None:
        with self.lock:
            self.aborted = True
            connection = self.connection
        if connection is not None:
            connection.close()


class ThreadedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, verify: ssl.SSLContext | bool, connect_timeout: float, read_timeout: float
    ) -> None:
        self._tls = verify if isinstance(verify, ssl.SSLContext) else _context(verify)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: dict[Origin, list[_Connection]] = {}
        self._lock = threading.Lock()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        abort = _Abort()
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(_HEADS, self._exchange, request, body, abort)
        try:
            connection, head = await asyncio.shield(work)
        except asyncio.CancelledError:
            abort.abort()  # the thread's socket is shut: it ends soon, its connection closed
            work.add_done_callback(_drop)
            raise
        stream = _Body(self, connection, head, loop)
        return httpx.Response(
            head.status,
            headers=head.headers,
            stream=stream,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    # -- in a thread ----------------------------------------------------------------------
    def _exchange(
        self, request: httpx.Request, body: bytes, abort: _Abort
    ) -> tuple[_Connection, _Head]:
        origin = _origin(request.url)
        while True:
            connection = self._kept(origin) or self._connect(origin, request)
            abort.hold(connection)
            try:
                return connection, self._send(connection, request, body)
            except _Dead:  # a kept connection the server had closed: a new one
                connection.close()
            except BaseException:
                connection.close()
                raise

    def _kept(self, origin: Origin) -> _Connection | None:
        with self._lock:
            kept = self._idle.get(origin, [])
            while kept:
                connection = kept.pop()
                if _still_open(connection.sock):
                    connection.reused = True
                    return connection
                connection.close()
        return None

    def keep(self, connection: _Connection) -> None:
        with self._lock:
            kept = self._idle.setdefault(connection.origin, [])
            if len(kept) < _KEPT:
                kept.append(connection)
                return
        connection.close()

    def _connect(self, origin: Origin, request: httpx.Request) -> _Connection:
        scheme, host, port = origin
        try:
            sock = socket.create_connection((host, port), timeout=self._connect_timeout)
        except TimeoutError as error:
            raise httpx.ConnectTimeout(str(error), request=request) from error
        except OSError as error:
            raise httpx.ConnectError(str(error), request=request) from error
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=host)
            except (OSError, ssl.SSLError) as error:
                sock.close()
                raise httpx.ConnectError(str(error), request=request) from error
        sock.settimeout(self._read_timeout)
        return _Connection(sock, origin)

    def _send(self, connection: _Connection, request: httpx.Request, body: bytes) -> _Head:
        parser = h11.Connection(h11.CLIENT)
        target = request.url.raw_path
        headers = [(name, value) for name, value in request.headers.raw]
        if body and not any(name.lower() == b"content-length" for name, _ in headers):
            headers.append((b"Content-Length", str(len(body)).encode()))
        out = parser.send(h11.Request(method=request.method, target=target, headers=headers))
        out += parser.send(h11.Data(data=body)) if body else b""
        out += parser.send(h11.EndOfMessage())
        try:
            connection.sock.sendall(out)
            head = _read_head(connection, parser, request)
            if head.length is not None and not head.body_done and head.length <= SMALL:
                _read_small(connection.sock, head)
            return head
        except _Dead:
            raise
        except TimeoutError as error:
            raise httpx.ReadTimeout(str(error), request=request) from error
        except h11.RemoteProtocolError as error:
            raise httpx.RemoteProtocolError(str(error), request=request) from error
        except OSError as error:
            if connection.reused:
                raise _Dead from error
            raise httpx.ReadError(str(error), request=request) from error


def _read_head(connection: _Connection, parser: h11.Connection, request: httpx.Request) -> _Head:
    first = True
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            data = connection.sock.recv(_RECV)
            if not data and first and connection.reused:
                raise _Dead
            first = False
            parser.receive_data(data)
            continue
        if isinstance(event, h11.InformationalResponse):
            continue
        if not isinstance(event, h11.Response):
            raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__}", request=request)
        return _head(event, parser, request)


def _head(response: h11.Response, parser: h11.Connection, request: httpx.Request) -> _Head:
    headers = list(response.headers.raw_items())
    length = next((int(v) for n, v in headers if n.lower() == b"content-length"), None)
    chunked = any(n.lower() == b"transfer-encoding" for n, _ in headers)
    tokens = b",".join(v.lower() for n, v in headers if n.lower() == b"connection")
    keep_alive = response.http_version == b"1.1" and b"close" not in tokens
    no_body = request.method == "HEAD" or response.status_code in (204, 304)
    if no_body:
        return _Head(response.status_code, headers, keep_alive, 0, b"", True, parser)
    if chunked or length is None:  # read by h11; to the end of the connection without either
        keep_alive = keep_alive and chunked
        return _Head(response.status_code, headers, keep_alive, None, b"", False, parser)
    early = parser.trailing_data[0][:length]
    keep_alive = keep_alive and len(parser.trailing_data[0]) <= length
    return _Head(response.status_code, headers, keep_alive, length, early, False, parser)


def _read_small(sock: socket.socket, head: _Head) -> None:
    """The rest of a small body, read in the thread that read its head (one hop, no thread
    of its own)."""
    assert head.length is not None
    received = bytearray(head.early)
    while len(received) < head.length:
        data = sock.recv(head.length - len(received))
        if not data:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            )
        received += data
    head.early, head.body_done = bytes(received), True


class _Body(httpx.AsyncByteStream):
    """An answer's body, read by a thread of its own into blocks, at most ``QUEUED`` ahead."""

    def __init__(
        self,
        transport: ThreadedTransport,
        connection: _Connection,
        head: _Head,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._head = head
        self._loop = loop
        self._blocks: queue.Queue[object] = queue.Queue(QUEUED)
        self._pool = BlockPool(BLOCK, POOLED)
        self._ready = asyncio.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._complete = False
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._head.body_done:
            self._complete = True
            if self._head.early:
                yield self._head.early
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._pump, name="ocireg-sync-body")
            self._thread.daemon = True
            self._thread.start()
        while True:
            try:
                item = self._blocks.get_nowait()
            except queue.Empty:
                self._ready.clear()
                if self._blocks.empty():
                    await self._ready.wait()
                continue
            if item is _END:
                self._complete = True
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes | bytearray)  # a full block is a bytearray (_as_bytes)
            yield cast(bytes, item)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if (self._complete or self._head.body_done) and self._head.keep_alive:
            self._transport.keep(self._connection)
            return
        self._connection.close()  # unblocks the thread's read; its blocks are dropped

    # -- in the body's thread -------------------------------------------------------------
    def _pump(self) -> None:
        try:
            reader = self._by_length if self._head.length is not None else self._by_parser
            reader()
        except TimeoutError as error:
            self._put(httpx.ReadTimeout(str(error)))
        except h11.RemoteProtocolError as error:
            self._put(httpx.RemoteProtocolError(str(error)))
        except OSError as error:
            self._put(httpx.ReadError(str(error)))
        except httpx.HTTPError as error:
            self._put(error)
        except Exception as error:  # anything else still ends the body: its reader never hangs
            self._put(httpx.ReadError(f"{type(error).__name__}: {error}"))
        else:
            self._put(_END)
        finally:
            self._pool.clear()

    def _by_length(self) -> None:
        assert self._head.length is not None
        left = self._head.length
        if self._head.early:
            left -= len(self._head.early)
            self._put(self._head.early)
        sock = self._connection.sock
        while left > 0 and not self._stop.is_set():
            block = self._pool.take() if left >= BLOCK else bytearray(left)
            view, filled = memoryview(block), 0
            while filled < len(block):
                got = sock.recv_into(view[filled:])
                if not got:
                    if filled:  # what arrived is kept (a resumed download starts after it)
                        self._put(bytes(view[:filled]))
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body"
                    )
                filled += got
                if filled < len(block) and not _more_soon(sock):
                    break  # a slow or stalled upstream: what came goes on now
            left -= filled
            self._put(bytes(view[:filled]) if filled < len(block) else _as_bytes(block))

    def _by_parser(self) -> None:
        parser, sock = self._head.parser, self._connection.sock
        while not self._stop.is_set():
            event = parser.next_event()
            if event is h11.NEED_DATA:
                parser.receive_data(sock.recv(_RECV))
            elif isinstance(event, h11.Data):
                self._put(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._head.keep_alive &= parser.trailing_data == (b"", False)
                return

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._blocks.put(item, timeout=0.2)
            except queue.Full:
                continue
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody reads
                self._loop.call_soon_threadsafe(self._ready.set)
            return


def _more_soon(sock: socket.socket) -> bool:
    """Whether more of the body is there, or comes within ``_SILENCE``: a block is handed on
    when it is full or when the upstream pauses, so a slow upstream's bytes are not held."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    return _readable(sock, _SILENCE)


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` has something to read (data, or its end) within ``timeout`` seconds.
    ``poll``, not ``select``: the server raises its open-file limit, and select cannot watch a
    descriptor of 1024 or more."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(timeout * 1000))


def _as_bytes(block: bytearray) -> bytes:
    """A full block as it is, without the copy ``bytes()`` would make: nothing writes to it
    once it is handed on, and its readers (hashing, file writes, ``join``) take any buffer."""
    return cast(bytes, block)


def _drop(work: asyncio.Future[tuple[_Connection, _Head]]) -> None:
    """A cancelled request's exchange, once its thread ends: its connection closed, its failure
    (the aborted socket's, most likely) taken so that it is not reported as never retrieved."""
    if work.cancelled():
        return
    if work.exception() is None:
        work.result()[0].close()


def _origin(url: httpx.URL) -> Origin:
    port = url.port or (443 if url.scheme == "https" else 80)
    return (url.scheme, url.host, port)


def _still_open(sock: socket.socket) -> bool:
    """An idle connection is readable only if the server closed it (or sent what it should
    not have): either way it cannot be used."""
    try:
        return not _readable(sock, 0)
    except (OSError, ValueError):
        return False


def _context(verify: bool) -> ssl.SSLContext:
    if verify:
        return httpx.create_ssl_context(verify=True)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
