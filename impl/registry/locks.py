"""Per-key locks that hold across coroutines and, with a lock directory, across processes.

Several uvicorn workers may serve one storage root, so a read-modify-write of a repository's
``index.json`` must be serialised between processes: we take an in-process ``asyncio.Lock`` first
(so a process contends with itself cheaply) and then an ``flock`` on a file named after the key.
When another process holds it, a thread waits in a blocking ``flock`` so the event loop never
stalls, and the kernel hands the lock over as soon as it is released (polling with a back-off
left a waiting process asleep while the holder took the lock again and again).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Threads that wait for another process's lock: one per key being waited on at once.
_WAITERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="ocireg-flock")


class KeyedLocks:
    def __init__(self, lock_dir: Path | None) -> None:
        self._dir = lock_dir
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}
        if lock_dir is not None:
            lock_dir.mkdir(parents=True, exist_ok=True)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._local.get(key, (asyncio.Lock(), 0))
        self._local[key] = (lock, users + 1)
        try:
            async with lock:
                if self._dir is None:
                    yield
                else:
                    fd = await self._flock(key)
                    try:
                        yield
                    finally:
                        os.close(fd)  # closing the descriptor releases the flock
        finally:
            lock, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)

    async def _flock(self, key: str) -> int:
        assert self._dir is not None
        name = hashlib.sha256(key.encode()).hexdigest()[:40] + ".lock"
        fd = os.open(self._dir / name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        except BaseException:
            os.close(fd)
            raise
        try:
            waiting = asyncio.get_running_loop().run_in_executor(
                _WAITERS, fcntl.flock, fd, fcntl.LOCK_EX
            )
        except BaseException:  # no thread to wait in (shutting down): nothing holds fd
            os.close(fd)
            raise
        try:
            await asyncio.shield(waiting)
        except BaseException:
            # Cancelled (or the wait failed): the thread may still get the lock; let it go then.
            waiting.add_done_callback(lambda _: os.close(fd))
            raise
        return fd


@contextlib.contextmanager
def try_exclusive(lock: Path) -> Iterator[bool]:
    """Whether this process holds ``lock`` (a file lock) for the block; never waits: one
    process of several does the work, the others skip it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
