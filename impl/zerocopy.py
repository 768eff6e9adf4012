"""The ASGI "Zero Copy Send" extension on uvicorn's plain-TCP connections.

A request's scope offers ``scope["extensions"]["http.response.zerocopysend"]``; the app may
then send ``{"type": "http.response.zerocopysend", "file": <fd or file object>, "offset",
"count", "more_body"}`` after ``http.response.start``, and the bytes go from the file to the
client's socket by ``os.sendfile``: no read into Python, no user-space copy, no write through
the transport's buffer. ``offset`` absent: from the file's position, which then moves past
what was sent; ``count`` absent: to the end of the file. Bodies and zero-copy parts may be
mixed in one response.

A pipe is a source too (ours, not the ASGI extension's): its read end as ``file``, no
``offset``, ``count`` required; the bytes go from the pipe to the socket by ``os.splice``, on
the loop, as another thread fills the pipe (``splicepump``: a blob still in an S3 socket). The
send waits for the pipe to be readable or the socket writable, whichever held it up; the
pipe's writer closing early is a short part (an error, as a file that ends early).

TLS connections do not offer it (the kernel cannot encrypt): their responses use
``http.response.body`` as before (``connections.py`` offers it only on plain TCP).

How it sends without fighting uvloop: the transport owns the socket's descriptor (uvloop
refuses ``add_writer`` on it). The sender waits until the transport's write buffer is empty
(the headers, and any body part before, are out), then calls ``os.sendfile`` on a duplicate of
the descriptor, on the event loop: the socket is non-blocking, so a call copies what the
socket's buffer takes and returns, and when the socket is full the sender waits for it to be
writable through ``add_writer`` on the duplicate (epoll accepts a second descriptor of one
socket). A file that ``sendfile`` cannot read (a filesystem without splice support) is read
and written through the transport instead, its reads in a worker thread. Otherwise no
thread: a cancelled send (``http.writeTimeout``, a disconnect seen by the app) stops at once,
and a slow client holds no worker thread. The response's end goes through uvicorn's own
``http.response.body`` path, so its Content-Length check and keep-alive handling apply as for
any body: the bytes sent by zero copy are counted against Content-Length first.

uvicorn writes nothing else on the connection during a response, except on paths that then
close it: a pipelined request it cannot parse (400), a refused WebSocket upgrade (403), the
header timeout (408, ``connections.py``). Such an answer may land inside a part being sent,
as it lands inside a body part uvicorn is sending; the client sees a response cut off and the
connection closed. A send never outlives the connection: its descriptor is duplicated only
while the transport is open (a closed one's number may already be the next connection's),
and the close, or the upgrade, ends every send still pending on it.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import stat
import struct
import termios
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

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
        file = message["file"]
        fd = descriptor(file)
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            count = int(message["count"])  # a pipe has no size to default to
            return await self._framed(count, partial(self._splice, fd, count))
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

    async def _splice(self, pipe: int, count: int) -> int:
        """``count`` bytes from the pipe into the socket, after what the transport holds;
        fewer only if the pipe's writer closes first. The pipe's writer fills it from another
        thread (``splicepump``); here, each splice moves what the pipe holds and the socket
        takes, and then the send waits, on the loop, for whichever of them was the limit."""
        await self._transport_drained()
        if self._gone():  # see _sendfile: the dup below must be of this connection's socket
            return 0
        out = os.dup(self._socket_fd)
        sent = 0
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        try:
            while sent < count and not self._gone():
                try:
                    moved = os.splice(pipe, out, count - sent, flags=flags)
                except BlockingIOError:  # the pipe is empty, or the socket is full
                    moved = None
                if moved == 0:
                    break  # the writer closed an empty pipe: the end
                sent += moved or 0
                self._sent += moved or 0
                if sent < count and _held(pipe):
                    await self._ready(out)  # the socket took less than the pipe holds
                elif sent < count:
                    await self._ready(pipe, write=False)
        finally:
            os.close(out)
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

    async def _ready(self, fd: int, write: bool = True) -> None:
        """Wait until ``fd`` is writable (or, ``write`` false, readable), or the connection
        is gone. (A future and one timer per wait, not ``asyncio.wait``: a splice waits
        thousands of times per GiB, and that cost 0.1 s of CPU per GiB more.)"""
        loop = asyncio.get_running_loop()
        watch, unwatch = (
            (loop.add_writer, loop.remove_writer)
            if write
            else (loop.add_reader, loop.remove_reader)
        )
        # our dup keeps the socket open after the transport closes its own descriptor: a
        # close that no connection_lost reports (one not seen by this protocol) is noticed
        # at the next look, so a peer that stops reading cannot pin the send forever
        while not self._gone():
            self._waiter = waiter = loop.create_future()
            watch(fd, _wake, waiter)
            look_again = loop.call_later(_RECHECK, _wake, waiter, False)
            try:
                if await waiter:
                    return
            finally:
                unwatch(fd)
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
        if not self._cycle.response_complete:
            self._quit()
        if self._waiter is not None:
            _wake(self._waiter)


def _held(pipe: int) -> int:
    """The bytes waiting in a pipe."""
    return int(struct.unpack("i", fcntl.ioctl(pipe, termios.FIONREAD, b"\0\0\0\0"))[0])


def _wake(waiter: asyncio.Future[bool], ready: bool = True) -> None:
    if not waiter.done():
        waiter.set_result(ready)
