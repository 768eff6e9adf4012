"""Per-key locks that hold across coroutines and, with a lock directory, across processes.

Several uvicorn workers may serve one storage root, so a read-modify-write of a repository's
``index.json`` must be serialised between processes: we take an in-process ``asyncio.Lock`` first
(so a process contends with itself cheaply) and then an ``flock`` on a file named after the key.
``flock`` is polled without blocking so the event loop never stalls behind another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

_MAX_BACKOFF = 0.02


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
        delay = 0.0005
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    pass
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
        except BaseException:
            os.close(fd)
            raise


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
