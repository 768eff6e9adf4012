"""A body still in a socket (``ocireg.storage.socketbody``: a blob's S3 answer), copied by one
thread of its own straight into the client's socket (``ocireg.zerocopy``, a relay part): each
piece is received into one buffer and written out from it, with no hop through the event loop
per piece.

Why a copy, and not ``splice`` through a pipe as before: the spliced body cost ocireg less, but
cost its client more, far more than it saved. A socket receiving pages that were spliced to it
(S3's own, handed on) spends about 0.4 CPU s per GiB more than one receiving bytes that a
``write`` put into fresh buffers; measured on loopback, where the bench's client shares the
machine, the spliced pull was 0.8x of docker-registry's, this one 1.03-1.10x, while ocireg
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

import os
import select
import threading
from collections.abc import Callable

from ocireg.logs import Expected
from ocireg.storage.socketbody import SocketBody

RELAY_BYTES = 256 << 10  # as fast as 1 MiB or 4 MiB on the bench, a quarter of the memory
_LOOK_AGAIN = 0.2  # seconds between looks at the stop while the client's socket is full

# (bytes the client's socket took, the error that ended the relay or None), from the thread
Done = Callable[[int, BaseException | None], None]


class S3BodyError(OSError, Expected):
    """S3's side of a relay failed: its answer ended short, stalled, or its connection broke.
    Never an ``errno`` of its own (a client gone is one: ``zerocopy`` tells them apart by
    it); raised to the app, whose answer is cut off, and logged as one warning line."""


class ShortBodyError(S3BodyError):
    """The S3 answer ended before the length it promised."""


class S3StalledError(S3BodyError, TimeoutError):
    """S3 sent nothing for the body's read timeout."""


class RelayStopped(OSError):
    """The relay was stopped before it had sent the whole body."""


class SocketRelay:
    """``body`` copied, by :meth:`start`'s thread, into a client's socket. Whoever ends the
    relay frees the body: the thread when it ends, :meth:`stop` if it never started."""

    def __init__(self, body: SocketBody) -> None:
        self.body = body
        # what the client's socket has taken so far, kept by the thread: what a response cut
        # off counts (all but a write under way when it was cut)
        self.sent = 0
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
        error: BaseException | None = None
        try:
            self._relay(out)
        except BaseException as failed:  # S3's, the client gone, the stop, a fault: the app's
            error = failed
        finally:
            os.close(out)
            self.body.close()
            done(self.sent, error)

    def _relay(self, out: int) -> None:
        body = self.body
        room = select.poll()
        room.register(out, select.POLLOUT)

        def write(data: memoryview) -> None:
            while data:
                if self._stopped:
                    raise RelayStopped("stopped")
                try:
                    wrote = os.write(out, data)
                except BlockingIOError:
                    wrote = 0
                data = data[wrote:]
                self.sent += wrote
                if data:
                    room.poll(_LOOK_AGAIN * 1000)

        write(memoryview(body.head))  # what arrived with the answer's head goes first
        left = body.length - len(body.head)
        readable = select.poll()
        readable.register(body.sock.fileno(), select.POLLIN)
        wait_ms = max(1, round(body.read_timeout * 1000))
        buffer = memoryview(bytearray(min(left, RELAY_BYTES) or 1))
        while left > 0:
            got = self._receive(readable, wait_ms, buffer[: min(left, len(buffer))])
            if got is None:  # woken with nothing to read after all: wait again
                continue
            if got == 0:
                if self._stopped:
                    raise RelayStopped("stopped")
                done = body.length - left
                raise ShortBodyError(f"the body ended after {done} of {body.length} bytes")
            left -= got
            write(buffer[:got])

    def _receive(self, readable: select.poll, wait_ms: int, into: memoryview) -> int | None:
        """S3's next bytes into ``into``: how many (0 at the answer's end), None when there
        were none after all. Any failure is S3's (an ``S3BodyError``), whatever its errno."""
        body = self.body
        try:
            if not readable.poll(wait_ms):
                raise S3StalledError(
                    f"S3 sent nothing for {body.read_timeout:g} s, after {self.sent} of "
                    f"{body.length} bytes"
                )
            return body.sock.recv_into(into)
        except BlockingIOError:
            return None
        except S3BodyError:
            raise
        except OSError as error:  # a reset, say: not the client's errno to be mistaken for
            if self._stopped:  # the stop shut the socket down
                raise RelayStopped("stopped") from error
            raise S3BodyError(
                f"the S3 connection failed after {self.sent} of {body.length} bytes: {error}"
            ) from error
