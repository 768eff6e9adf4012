"""A body still in a socket (``ocireg.storage.socketbody``), moved into a pipe by one thread
with ``splice``, for the event loop to splice from the pipe into the client's socket
(``ocireg.zerocopy``, a pipe source): the bytes go from one socket to the other through the
kernel, never read into this process.

Why: a pull from S3 read each piece into a buffer here and wrote it out again (two copies,
the buffer's pages faulted in, a Python hop per piece); the Go server it is measured against
spends less CPU per GiB than that. See ``bench/S3.md``.

Bounds: the pipe is the read-ahead: the thread blocks when it is full (``PIPE_BYTES``, or
what the system allows), so a client that stops reading holds at most the pipe and the two
sockets' buffers, all in the kernel, whatever the blob's size. :meth:`SplicePump.stop` ends
the thread wherever it waits: it shuts the S3 socket down (a splice from it then reads the
end) and closes the pipe's read end (a splice into the pipe then fails with ``EPIPE``). The
thread closes the S3 connection when it ends; it is never reused.

The thread never sleeps inside a splice from the socket: a ``splice`` holds the pipe's lock
throughout, and one that waited there for S3's bytes would hold up every user of the pipe's
other end, the event loop's non-blocking splice, its ``FIONREAD`` and its ``close`` included
(the whole worker froze while S3 stalled). So the socket is non-blocking, the thread waits
for it in ``poll`` (no lock held; the read timeout: a stall is an error), and a splice moves
what is there. Waiting for room in a full pipe is safe: the kernel drops the lock for that.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import threading

from ocireg.storage.socketbody import SocketBody

log = logging.getLogger("ocireg.splice")

PIPE_BYTES = 1 << 20  # the read-ahead: Linux's default pipe-max-size for unprivileged users


class ShortBodyError(OSError):
    """The S3 answer ended before the length it promised."""


class SplicePump:
    """A pipe whose read end is :attr:`fd` (non-blocking), made first (its :attr:`capacity`
    decides whether splicing is worth it). It takes a body (:meth:`take`), which
    :meth:`start` moves into the pipe on a thread of its own. The writer's end closes when
    the body is all in, or the pump ends early (then :attr:`error` says why, unless it was
    stopped). :meth:`stop` frees everything, started or not."""

    def __init__(self, pipe_bytes: int | None = None) -> None:
        self.fd, self._write_fd = os.pipe2(os.O_CLOEXEC)
        try:
            self.capacity = _grow(self._write_fd, pipe_bytes or PIPE_BYTES)
            os.set_blocking(self.fd, False)
        except BaseException:
            os.close(self.fd)
            os.close(self._write_fd)
            raise
        self.error: BaseException | None = None
        self._body: SocketBody | None = None
        self._started = False
        self._stopped = False

    def take(self, body: SocketBody) -> None:
        """The body to move: the pump's from now on (whoever ends the pump closes it)."""
        self._body = body

    def start(self) -> None:
        """Move the body into the pipe on a thread of its own (which closes it when done)."""
        body = self._body
        assert body is not None, "take() a body first"
        thread = threading.Thread(target=self._run, args=(body,), name="ocireg-splice")
        thread.daemon = True
        thread.start()  # may raise (no more threads): then stop() closes the body
        self._started = True

    def stop(self) -> None:
        """End the pump and close the read end; from the event loop, once nothing splices
        from :attr:`fd` any more (or from anywhere, if it never started). Blocks on
        nothing."""
        if self._stopped:
            return
        self._stopped = True
        if not self._started:  # no thread to close the writer's end and the body
            os.close(self.fd)
            os.close(self._write_fd)
            if self._body is not None:
                self._body.close()
            return
        assert self._body is not None
        self._body.interrupt()  # a thread waiting for S3's bytes wakes at the socket's end
        os.close(self.fd)  # one waiting for room in the pipe wakes with EPIPE

    def _run(self, body: SocketBody) -> None:
        try:
            self._pump(body)
        except OSError as error:
            if not self._stopped:  # a stop's EPIPE or shut-down socket is no error
                self.error = error
                log.warning("a blob body from S3 ended early: %s", error)
        finally:
            os.close(self._write_fd)  # the loop's splice then reads the end of the pipe
            body.close()

    def _pump(self, body: SocketBody) -> None:
        pipe = self._write_fd
        head = memoryview(body.head)
        while head:  # what arrived with the answer's head goes first
            head = head[os.write(pipe, head) :]
        left = body.length - len(body.head)
        source = body.sock.fileno()
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_MORE
        readable = select.poll()
        readable.register(source, select.POLLIN)
        wait_ms = max(1, round(body.read_timeout * 1000))
        while left > 0:
            if not readable.poll(wait_ms):
                done = body.length - left
                raise TimeoutError(
                    f"S3 sent nothing for {body.read_timeout:g} s, after {done} of "
                    f"{body.length} bytes"
                )
            try:
                moved = os.splice(source, pipe, min(left, self.capacity), flags=flags)
            except BlockingIOError:  # woken with nothing to read after all: wait again
                continue
            if moved == 0:
                if self._stopped:
                    return
                done = body.length - left
                raise ShortBodyError(f"the body ended after {done} of {body.length} bytes")
            left -= moved


def _grow(pipe: int, wanted: int) -> int:
    """Make the pipe hold ``wanted`` bytes, or as much as the system lets this process: the
    pipe's capacity."""
    for size in (wanted, _max_pipe()):
        if size <= 0:
            continue
        try:
            return int(fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, size))
        except OSError:  # over pipe-max-size unprivileged, or over the user's pipe pages
            continue
    return int(fcntl.fcntl(pipe, fcntl.F_GETPIPE_SZ))


def _max_pipe() -> int:
    try:
        with open("/proc/sys/fs/pipe-max-size") as limit:
            return int(limit.read())
    except (OSError, ValueError):
        return 0
