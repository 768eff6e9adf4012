"""A body still in a socket (``ocireg.storage.socketbody``: a blob's S3 answer), copied by one
thread of its own straight into the client's socket (``ocireg.zerocopy``, a relay part): each
piece is received into one buffer and written out from it, with no hop through the event loop
per piece.

Why a copy, and not ``splice`` through a pipe as before: the spliced body cost ocireg less, but
cost its client more, far more than it saved. A socket receiving pages that were spliced to it
(S3's own, handed on) spends about 0.4 CPU s per GiB more than one receiving bytes that a
``write`` put into fresh buffers; measured on loopback, where the bench's client shares the
machine, the spliced pull was 0.8x of docker-registry's, this one 1.03-1.08x, while ocireg
still spends less CPU per GiB than docker-registry does (``bench/S3.md``).

Bounds: one buffer of ``RELAY_BYTES`` per pull; a client that stops reading holds it, and the
two sockets' buffers in the kernel, whatever the blob's size.

Waits, and how each ends:

- for S3's next bytes: in ``poll`` on the non-blocking S3 socket, at most the body's read
  timeout (a stall is an error: the client's answer is cut, as for a body that ends short);
  :meth:`SocketRelay.stop` wakes it by shutting the socket down;
- for room in the client's socket: in ``poll``, which wakes every ``_LOOK_AGAIN`` seconds to
  see whether the relay was stopped (``http.writeTimeout``, the connection closed by the
  server) and otherwise waits on: how long a client may take is the connection's business,
  not the relay's. A client gone fails the write at once.

The thread never writes after it has seen the stop; one write already under way (non-blocking,
so it only fills what the socket has room for) may land after :meth:`SocketRelay.stop`
returns: the answer is being cut off then, and the connection closed, so it is the same
answer's bytes, in order. The thread closes the S3 connection and its duplicate of the client's
socket when it ends, then reports what it sent and why it ended.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable

from ocireg.storage.socketbody import SocketBody

log = logging.getLogger("ocireg.relay")

RELAY_BYTES = 256 << 10  # as fast as 1 MiB or 4 MiB on the bench, a quarter of the memory
_LOOK_AGAIN = 0.2  # seconds between looks at the stop while the client's socket is full

# (bytes the client's socket took, the error that ended the relay or None), from the thread
Done = Callable[[int, BaseException | None], None]


class ShortBodyError(OSError):
    """The S3 answer ended before the length it promised."""


class RelayStopped(OSError):
    """The relay was stopped before it had sent the whole body."""


class SocketRelay:
    """``body`` copied, by :meth:`start`'s thread, into a client's socket. Whoever ends the
    relay frees the body: the thread when it ends, :meth:`stop` if it never started."""

    def __init__(self, body: SocketBody) -> None:
        self.body = body
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False

    @property
    def length(self) -> int:
        return self.body.length

    def start(self, out: int, done: Done) -> None:
        """Copy the body into ``out`` (a descriptor of the client's non-blocking socket, the
        relay's own: the thread closes it) on a thread of its own, which calls ``done`` from
        that thread when it ends. Raises (``out`` then still the caller's) if no thread can
        start, or the relay was stopped already."""
        with self._lock:
            if self._stopped:
                raise RelayStopped("the relay was stopped before it started")
            thread = threading.Thread(
                target=self._run, args=(out, done), name="ocireg-relay", daemon=True
            )
            thread.start()
            self._started = True

    def stop(self) -> None:
        """End the relay wherever it is, from any thread; blocks on nothing. Not started: the
        body is closed here. Started: the thread wakes from any wait and ends (it frees what it
        holds)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            started = self._started
        if started:
            self.body.interrupt()  # a wait for S3's bytes wakes at the socket's end
        else:
            self.body.close()

    def _run(self, out: int, done: Done) -> None:
        sent, error = 0, None
        try:
            sent = self._relay(out)
        except _Partial as partial:
            sent, error = partial.sent, partial.error
            if not isinstance(error, RelayStopped):
                log.info("a blob body from S3 ended after %d bytes: %s", sent, error)
        finally:
            os.close(out)
            self.body.close()
            done(sent, error)

    def _relay(self, out: int) -> int:
        body = self.body
        room = select.poll()
        room.register(out, select.POLLOUT)
        sent = 0

        def write(data: memoryview) -> None:
            nonlocal sent
            while data:
                if self._stopped:
                    raise RelayStopped("stopped")
                try:
                    wrote = os.write(out, data)
                except BlockingIOError:
                    wrote = 0
                data = data[wrote:]
                sent += wrote
                if data:
                    room.poll(_LOOK_AGAIN * 1000)

        try:
            write(memoryview(body.head))  # what arrived with the answer's head goes first
            left = body.length - len(body.head)
            source = body.sock
            readable = select.poll()
            readable.register(source.fileno(), select.POLLIN)
            wait_ms = max(1, round(body.read_timeout * 1000))
            buffer = memoryview(bytearray(min(left, RELAY_BYTES) or 1))
            while left > 0:
                if not readable.poll(wait_ms):
                    done = body.length - left
                    raise TimeoutError(
                        f"S3 sent nothing for {body.read_timeout:g} s, after {done} of "
                        f"{body.length} bytes"
                    )
                try:
                    got = source.recv_into(buffer[: min(left, len(buffer))])
                except BlockingIOError:  # woken with nothing to read after all: wait again
                    continue
                if got == 0:
                    if self._stopped:
                        raise RelayStopped("stopped")
                    done = body.length - left
                    raise ShortBodyError(f"the body ended after {done} of {body.length} bytes")
                left -= got
                write(buffer[:got])
        except OSError as error:
            raise _Partial(sent, error) from error
        return sent


class _Partial(Exception):
    def __init__(self, sent: int, error: OSError) -> None:
        super().__init__(sent, error)
        self.sent, self.error = sent, error
