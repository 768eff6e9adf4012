"""The ASGI "Zero Copy Send" extension on uvicorn's plain-TCP connections.

A request's scope offers ``scope["extensions"]["http.response.zerocopysend"]``; the app may
then send ``{"type": "http.response.zerocopysend", "file": <fd or file object>, "offset",
"count", "more_body"}`` after ``http.response.start``, and the bytes go from the file to the
client's socket by ``os.sendfile``: no read into Python, no user-space copy, no write through
the transport's buffer. ``offset`` absent: from the file's position, which then moves past
what was sent; ``count`` absent: to the end of the file. Bodies and zero-copy parts may be
mixed in one response.

A relay is a source too (ours, not the ASGI extension's): ``{"type":
"http.response.zerocopysend", "relay": <ocireg.relay.SocketRelay>, "count", "more_body"}``.
Its thread copies a body still in another socket (a blob's S3 answer) into a duplicate of the
client's socket, the loop waiting for it to end; a relay that ends early is a short part (an
error, as a file that ends early). Not zero copy, but no hop through the loop per piece
(``relay`` says why a copy).

TLS connections do not offer it (the kernel cannot encrypt): their responses use
``http.response.body`` as before (``connections.py`` offers it only on plain TCP).

How it sends without fighting uvloop: the transport owns the socket's descriptor (uvloop
refuses ``add_writer`` on it). The sender waits until the transport's write buffer is empty
(the headers, and any body part before, are out), then calls ``os.sendfile`` on a duplicate of
the descriptor, on the event loop: the socket is non-blocking, so a call copies what the
socket's buffer takes and returns, and when the socket is full the sender waits for it to be
writable through ``add_writer`` on the duplicate (epoll accepts a second descriptor of one
socket). A file that ``sendfile`` cannot read (a filesystem without splice support) is read
and written through the transport instead, its reads in a worker thread. Otherwise a file's
send uses no thread: a cancelled send (``http.writeTimeout``, a disconnect seen by the app)
stops at once, and a slow client holds no worker thread. A relay's thread is stopped by the
same, and by the connection's close. The response's end goes through uvicorn's own
``http.response.body`` path, so its Content-Length check and keep-alive handling apply as for
any body: the bytes sent by zero copy are counted against Content-Length first.

uvicorn writes nothing else on the connection during a response, except on paths that then
close it: a pipelined request it cannot parse (400), a refused WebSocket upgrade (403), the
header timeout (408, ``connections.py``). Such an answer may land inside a part being sent,
as it lands inside a body part uvicorn is sending; the client sees a response cut off and the
connection closed. A send never outlives the connection: its descriptor is duplicated only
while the transport is open (a closed one's number may already be the next connection's),
and the close, or the upgrade, ends every send still pending on it. (A relay's thread, told
to stop, may take up to a fifth of a second to see it while the client's socket is full; its
duplicate holds the socket open until then, so the client sees the close that much later.)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from ocireg.relay import RelayStopped, SocketRelay

EXTENSION = "http.response.zerocopysend"
# Set in the message by the send, however it ends: the bytes of it the socket took (a part
# cut short, by its client or its source, sent some): what the request log counts.
SENT = "ocireg.sent"
# A peer gone mid-send: the same as uvicorn's disconnect during a body
_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN)
# A file sendfile cannot read (a filesystem without splice support): it is read instead
_UNSENDABLE = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)
_PIECE = 1 << 20
_RECHECK = 1.0  # seconds between looks at the transport while the socket stays full

Send = Callable[[Any], Awaitable[None]]


def offered(scope: Mapping[str, Any]) -> bool:
    """Whether the request's connection sends zero-copy responses."""
    return EXTENSION in scope.get("extensions", {})


def descriptor(file: Any) -> int:
    """The OS descriptor of a message's ``file``: a descriptor, or an object with ``fileno``."""
    return file if isinstance(file, int) else int(file.fileno())


def _position(file: Any) -> int:
    """Where a file is read next: a buffered file object's own position (its descriptor's
    may be past what it buffered), a descriptor's offset."""
    return os.lseek(file, 0, os.SEEK_CUR) if isinstance(file, int) else int(file.tell())


def _move(file: Any, to: int) -> None:
    if isinstance(file, int):
        os.lseek(file, to, os.SEEK_SET)
    else:
        file.seek(to)  # a buffered file drops what it had read ahead


class ZeroCopySend:
    """One request's ``send``: zero-copy messages are sent here, every other message goes to
    uvicorn's cycle (``RequestResponseCycle.send``), whose state this reads and keeps true."""

    def __init__(self, cycle: Any, transport: asyncio.Transport, socket_fd: int) -> None:
        self._cycle = cycle
        self._uvicorn_send: Send = cycle.send
        self._transport = transport
        self._socket_fd = socket_fd
        self._waiter: asyncio.Future[bool] | None = None
        self._lost = False  # the connection closed (or was handed to another protocol)
        self._sent = 0  # of the message being sent, so far
        self._relaying: SocketRelay | None = None

    async def __call__(self, message: Any) -> None:
        if message["type"] != EXTENSION:
            await self._uvicorn_send(message)
            return
        cycle = self._cycle
        if cycle.flow.write_paused and not self._gone():
            await cycle.flow.drain()
        if self._gone():
            self._quit()
            return
        if not cycle.response_started:
            raise RuntimeError(f"Expected 'http.response.start', but got '{EXTENSION}'.")
        if cycle.response_complete:
            raise RuntimeError(f"Unexpected '{EXTENSION}' sent after the response completed.")
        self._sent = 0
        try:
            if cycle.scope["method"] != "HEAD" and not await self._send_file(message):
                return  # the client went away
        finally:
            message[SENT] = self._sent
        # The end (or the chunk's end) goes through uvicorn, which completes the response.
        end = {"type": "http.response.body", "body": b""}
        await self._uvicorn_send({**end, "more_body": message.get("more_body", False)})

    async def _send_file(self, message: Any) -> bool:
        """Send the message's bytes; False when the client went away."""
        if "relay" in message:
            relay = message["relay"]
            return await self._framed(int(message["count"]), partial(self._relay, relay))
        file = message["file"]
        fd = descriptor(file)
        offset = message.get("offset")
        positioned = offset is None
        if positioned:
            offset = _position(file)
        count = message.get("count")
        if count is None:
            count = max(0, os.fstat(fd).st_size - offset)

        def moved(sent: int) -> None:
            if positioned:
                _move(file, offset + sent)

        return await self._framed(count, partial(self._sendfile, fd, offset, count), moved)

    async def _framed(
        self,
        count: int,
        transfer: Callable[[], Awaitable[int]],
        moved: Callable[[int], None] | None = None,
    ) -> bool:
        """``transfer`` ``count`` bytes into the socket, framed and counted as a body part
        is; False when the client went away."""
        cycle = self._cycle
        if count == 0:
            return True
        if not cycle.chunked_encoding and count > cycle.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        if cycle.chunked_encoding:
            self._transport.write(b"%x\r\n" % count)
        try:
            sent = await transfer()
        except OSError as error:
            if error.errno not in _GONE:
                raise
            self._quit()  # as uvicorn does when a body's write finds the client gone
            self._transport.close()
            return False
        if moved is not None:
            moved(sent)
        if not cycle.chunked_encoding:
            cycle.expected_content_length -= sent
        if self._gone():
            self._quit()
            return False
        if sent < count:
            raise RuntimeError(f"file ended after {sent} of {count} bytes of a zero-copy send")
        if cycle.chunked_encoding:
            self._transport.write(b"\r\n")
        return True

    async def _relay(self, relay: SocketRelay) -> int:
        """The relay's body into the socket, after what the transport holds; fewer bytes only
        if the relay ends early, whose error (but a client gone) is raised after the count."""
        await self._transport_drained()
        if self._gone():  # see _sendfile: the dup below must be of this connection's socket
            return 0
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[tuple[int, BaseException | None]] = loop.create_future()

        def done(sent: int, error: BaseException | None) -> None:  # on the relay's thread
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, ended, (sent, error))

        out = os.dup(self._socket_fd)
        try:
            relay.start(out, done)
        except BaseException:
            os.close(out)
            raise
        self._relaying = relay
        try:
            # the relay ends itself when the client goes (its write fails); a connection the
            # server closes, or one whose loss this protocol was not told of, is seen here
            while not ended.done():
                await asyncio.wait([ended], timeout=_RECHECK)
                if self._gone():
                    relay.stop()
        except BaseException:  # cancelled (http.writeTimeout, the app gone): cut it off
            relay.stop()
            self._sent += relay.sent  # all but a write under way now
            raise
        finally:
            self._relaying = None
        sent, error = ended.result()
        self._sent += sent
        if error is not None and not isinstance(error, RelayStopped):
            raise error
        return sent

    async def _sendfile(self, fd: int, offset: int, count: int) -> int:
        """``count`` bytes of ``fd`` from ``offset`` into the socket, after what the transport
        holds; fewer only if the file ends first."""
        await self._transport_drained()
        # The transport's descriptor is the connection's only while the transport is open:
        # once closed, its number may already belong to the next accepted connection. No
        # await lies between this check and the dup, and the dup is ours (the same socket
        # however the number is reused), so every sendfile below goes to this connection.
        if self._gone():
            return 0
        out = os.dup(self._socket_fd)
        sent = 0
        try:
            while sent < count and not self._gone():
                try:
                    copied = os.sendfile(out, fd, offset + sent, count - sent)
                except BlockingIOError:
                    copied = None
                except OSError as error:
                    if error.errno not in _UNSENDABLE or sent:
                        raise
                    return await self._read_and_write(fd, offset, count)
                if copied == 0:
                    break  # the end of the file
                if copied is not None:
                    sent += copied
                    self._sent += copied
                if copied is None or sent < count:  # the socket is full
                    await self._ready(out)
        finally:
            os.close(out)
        return sent

    async def _read_and_write(self, fd: int, offset: int, count: int) -> int:
        """The bytes read and written through the transport, as a body would be."""
        sent = 0
        while sent < count and not self._gone():
            # in a thread: such a file is often on a network or FUSE filesystem, whose reads
            # may take long enough to stall every connection on the loop
            piece = await asyncio.to_thread(os.pread, fd, min(_PIECE, count - sent), offset + sent)
            if not piece or self._gone():  # the end of the file, or closed while it read
                break
            self._transport.write(piece)
            sent += len(piece)
            self._sent += len(piece)
            if self._cycle.flow.write_paused:
                await self._cycle.flow.drain()
        return sent

    async def _transport_drained(self) -> None:
        """Wait until the transport has written everything it was given (the headers, body
        parts), so that the file's bytes follow them on the wire."""
        transport = self._transport
        if not transport.get_write_buffer_size():
            return
        low, high = transport.get_write_buffer_limits()
        # with both limits 0, uvicorn's flow control pauses until the buffer is empty
        transport.set_write_buffer_limits(high=0, low=0)
        try:
            while transport.get_write_buffer_size() and not self._gone():
                if self._cycle.flow.write_paused:
                    await self._cycle.flow.drain()
                else:
                    await asyncio.sleep(0.001)  # no pause signalled: look again shortly
        finally:
            transport.set_write_buffer_limits(high=high, low=low)

    async def _ready(self, fd: int) -> None:
        """Wait until ``fd`` is writable, or the connection is gone. (A future and one timer
        per wait, not ``asyncio.wait``: a send waits thousands of times per GiB, and that cost
        0.1 s of CPU per GiB more.)"""
        loop = asyncio.get_running_loop()
        # our dup keeps the socket open after the transport closes its own descriptor: a
        # close that no connection_lost reports (one not seen by this protocol) is noticed
        # at the next look, so a peer that stops reading cannot pin the send forever
        while not self._gone():
            self._waiter = waiter = loop.create_future()
            loop.add_writer(fd, _wake, waiter)
            look_again = loop.call_later(_RECHECK, _wake, waiter, False)
            try:
                if await waiter:
                    return
            finally:
                loop.remove_writer(fd)
                look_again.cancel()
                self._waiter = None

    def _gone(self) -> bool:
        """Whether the connection is closed or closing: nothing more may be sent on it."""
        return bool(self._lost or self._cycle.disconnected or self._transport.is_closing())

    def _quit(self) -> None:
        """Mark the response's cycle disconnected, as uvicorn marks only the connection's
        current one (a pipelined request may be queued behind this): its later sends do
        nothing, and the app's receive() answers ``http.disconnect``."""
        self._cycle.disconnected = True
        self._cycle.message_event.set()

    @property
    def finished(self) -> bool:
        return bool(self._cycle.response_complete or self._cycle.disconnected or self._lost)

    def connection_lost(self) -> None:
        """The connection closed, or went to another protocol: stop sending on it, and stop
        waiting for its socket."""
        self._lost = True
        if self._relaying is not None:
            self._relaying.stop()
        if not self._cycle.response_complete:
            self._quit()
        if self._waiter is not None:
            _wake(self._waiter)


def _wake(waiter: asyncio.Future[bool], ready: bool = True) -> None:
    if not waiter.done():
        waiter.set_result(ready)


def _settle(ended: asyncio.Future[tuple[int, BaseException | None]], outcome: Any) -> None:
    if not ended.done():
        ended.set_result(outcome)
