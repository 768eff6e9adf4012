"""A blocking binary handle's bytes as an async iterator, read by one thread of its own a
bounded number of pieces ahead of the event loop.

Why: starlette's ``StreamingResponse`` over a sync iterator hops to a worker thread for every
``next()`` (``iterate_in_threadpool``: a task, a thread-pool hand-off and a wake-up per piece),
and the piece was read into one buffer and copied into another on its way. Here one thread
reads each piece straight into a fresh buffer (``readinto``) and hands it to the loop with one
``call_soon_threadsafe``; the response sends a ``memoryview`` of it, so the bytes are never
copied in this process. A fresh buffer per piece, not a reused one: a transport may still hold
the previous piece when the next is read.

Bounds: the thread reads a piece only while fewer than ``depth`` of them wait for the loop, so
a slow client holds at most ``depth`` pieces here (plus the one being read); the server's flow
control bounds what waits in the transport. When the consumer stops (a client gone, the
response cancelled, an error), the thread finishes the piece it is reading, closes the handle
(for S3: the response and its connection) and ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO, cast

# 3 MiB pieces: 0.2 s less CPU per GiB pulled than 1 MiB ones, measured A/B (bench/S3.md);
# under glibc's mmap threshold as impl/heap.py sets it (4 MiB), so they come from the arena.
PIECE = 3 << 20
DEPTH = 2  # one ahead pulled as fast within noise; two is what the final figures measured

_Item = memoryview | BaseException | None  # None: the end


async def read_ahead(
    handle: BinaryIO, length: int | None = None, piece: int = PIECE, depth: int = DEPTH
) -> AsyncIterator[memoryview]:
    """The handle's bytes, ``length`` of them at most (all when None), in pieces of ``piece``
    bytes (the last may be shorter); the handle is closed when the iteration ends."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[_Item] = asyncio.Queue()
    room = threading.Semaphore(depth)
    stop = threading.Event()

    def post(item: _Item) -> None:
        try:
            loop.call_soon_threadsafe(arrived.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            stop.set()

    pump = _Pump(handle, length, piece, room, stop, post)
    threading.Thread(target=pump.run, name="ocireg-read-ahead", daemon=True).start()
    try:
        while True:
            item = await arrived.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            room.release()
            yield item
    finally:
        stop.set()
        room.release()  # a pump waiting for room wakes, sees the stop and closes the handle


class _Pump:
    """The reading thread's side: read, post, wait for room, until the end or the stop."""

    def __init__(
        self,
        handle: BinaryIO,
        length: int | None,
        piece: int,
        room: threading.Semaphore,
        stop: threading.Event,
        post: Callable[[_Item], None],
    ) -> None:
        self._handle, self._left, self._piece = handle, length, piece
        self._room, self._stop, self._post = room, stop, post

    def run(self) -> None:
        try:
            with self._handle:
                self._pieces()
        except BaseException as error:  # the consumer raises it in the loop
            self._post(error)
            return
        self._post(None)

    def _pieces(self) -> None:
        while self._left is None or self._left > 0:
            self._room.acquire()
            if self._stop.is_set():
                return
            size = self._piece if self._left is None else min(self._piece, self._left)
            buffer = bytearray(size)
            got = _fill(self._handle, memoryview(buffer))
            if got == 0:
                return
            if self._left is not None:
                self._left -= got
            self._post(memoryview(buffer) if got == size else memoryview(buffer)[:got])
            if got < size:  # the handle ended
                return


def _fill(handle: BinaryIO, view: memoryview) -> int:
    """Read into ``view`` until it is full or the handle ends; the count read."""
    readinto = cast(Callable[[memoryview], int | None], handle.readinto)  # type: ignore[attr-defined]
    filled = 0
    while filled < len(view):
        got = readinto(view[filled:])
        if not got:
            break
        filled += got
    return filled
