"""Per-key locks that hold across coroutines and, with a lock directory, across processes.

Several uvicorn workers may serve one storage root, so a read-modify-write of a repository's
``index.json`` must be serialised between processes: we take an in-process ``asyncio.Lock`` first
(so a process contends with itself cheaply) and then an ``flock`` on a file named after the key.
When another process holds it, a thread waits in a blocking ``flock`` so the event loop never
stalls, and the kernel hands the lock over as soon as it is released (polling with a back-off
left a waiting process asleep while the holder took the lock again and again).

With several instances on several machines (one bucket, a PostgreSQL meta DB), each key is
also held as a PostgreSQL advisory lock (:mod:`.sharedlocks`), taken after the flock.

A lock file may be removed, but only by a process that holds its lock (an upload session's
lock when the operation ends, :meth:`KeyedLocks.sweep` at start); whoever then gets the lock
on the removed file finds that the name no longer leads to it and starts again with a fresh
file, so two processes never hold "the same" lock on two different files. A repository's
lock file stays: a waiter on it is handed the lock by the kernel, which a removal would undo.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ocireg.registry.sharedlocks import AdvisoryLocks

# Threads that wait for another process's lock: one per key being waited on at once.
_WAITERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="ocireg-flock")
_STRIPES = 64


class KeyedLocks:
    def __init__(self, lock_dir: Path | None, shared: AdvisoryLocks | None = None) -> None:
        self._dir = lock_dir
        self._shared = shared
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}
        # for threads without a lock directory (in memory): keys share a few locks
        self._striped = [threading.Lock() for _ in range(_STRIPES)]
        if lock_dir is not None:
            lock_dir.mkdir(parents=True, exist_ok=True)

    @contextlib.asynccontextmanager
    async def hold(self, key: str, *, ephemeral: bool = False) -> AsyncIterator[None]:
        """Hold ``key``'s lock. ``ephemeral``: remove its lock file on release (for keys that
        are seldom contended and many, such as one per upload session)."""
        lock, users = self._local.get(key, (asyncio.Lock(), 0))
        self._local[key] = (lock, users + 1)
        try:
            async with lock:
                if self._dir is None:
                    async with self._across_instances(key):
                        yield
                else:
                    path = self._dir / _file_name(key)
                    fd = await self._flock(path)
                    try:
                        async with self._across_instances(key):
                            yield
                    finally:
                        if ephemeral:
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(path)  # while held: see the module docstring
                        os.close(fd)  # closing the descriptor releases the flock
        finally:
            lock, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)

    @contextlib.asynccontextmanager
    async def _across_instances(self, key: str) -> AsyncIterator[None]:
        """``key``'s advisory lock, waited for in a thread, when instances share one."""
        shared = self._shared
        if shared is None:
            yield
            return
        waiting = asyncio.get_running_loop().run_in_executor(_WAITERS, shared.acquire, key)
        try:
            connection = await asyncio.shield(waiting)
        except BaseException:
            # cancelled: the thread may still get the lock; let it go then
            waiting.add_done_callback(lambda done: _release_later(shared, key, done))
            raise
        try:
            yield
        finally:  # a round trip: not on the loop; shielded, so it happens even when cancelled
            releasing = asyncio.get_running_loop().run_in_executor(
                _WAITERS, shared.release, key, connection
            )
            await asyncio.shield(releasing)

    @contextlib.contextmanager
    def hold_blocking(self, key: str) -> Iterator[None]:
        """Hold ``key``'s lock from a thread, waiting as long as it takes (never on the event
        loop). It excludes holders of :meth:`hold` in other processes and instances (the flock
        and the advisory lock); in this process, for keys that threads alone take. Its lock
        file is removed on release, as an ephemeral key's."""
        if self._dir is None:
            with self._striped[hash(key) % _STRIPES], self._across_blocking(key):
                yield
            return
        path = self._dir / _file_name(key)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            if _still_named(fd, path):
                break
            os.close(fd)
        try:
            with self._across_blocking(key):
                yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # while held: see the module docstring
            os.close(fd)

    @contextlib.contextmanager
    def _across_blocking(self, key: str) -> Iterator[None]:
        shared = self._shared
        if shared is None:
            yield
            return
        connection = shared.acquire(key)
        try:
            yield
        finally:
            shared.release(key, connection)

    def sweep(self) -> int:
        """Remove every lock file nobody holds (left by ended sessions or crashed processes);
        returns how many. Blocking: for a thread, at start."""
        if self._dir is None:
            return 0
        removed = 0
        for entry in os.scandir(self._dir):
            try:
                fd = os.open(entry.path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _still_named(fd, entry.path):
                    os.unlink(entry.path)
                    removed += 1
            except BlockingIOError:
                pass  # held: in use
            finally:
                os.close(fd)
        return removed

    async def _flock(self, path: Path) -> int:
        """A descriptor holding the flock of the file at ``path`` (retried when the file was
        removed while we waited for it)."""
        while True:
            fd = await self._flock_file(path)
            if _still_named(fd, path):
                return fd
            os.close(fd)

    async def _flock_file(self, path: Path) -> int:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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


def _release_later(shared: AdvisoryLocks, key: str, done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is None:
        _WAITERS.submit(shared.release, key, done.result())


def _file_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:40] + ".lock"


def _still_named(fd: int, path: str | Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed or replaced)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


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
