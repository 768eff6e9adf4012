"""Storage work that is a network request, kept off the event loop.

On a local disk a repository's index or a manifest is read in microseconds, and a thread hop
would cost more than the read: such work runs where it is asked for. On S3 each is a request,
which a slow or silent S3 can hold for its read timeouts (seconds, each tried four times):
made on the event loop, it would hold every other request of the process with it. There it
runs on a storage worker thread, at most ``STORAGE_THREADS`` at once per process, apart from
the threads other work uses (the database's and the password checks' below; anyio's and
asyncio's default ones: settling, rounds' work and the rest): while S3 stalls, requests wait
for it, not that work.

The caller waits for the work to end even when it is cancelled meanwhile (its client gone, a
timeout, the server stopping), and is cancelled after: work under a repository's lock ends
before the lock is let go, and what a request leaves in storage is known when it returns.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import anyio

T = TypeVar("T")
log = logging.getLogger("ocireg.offloop")

STORAGE_THREADS = 64
# Work that asks a database across the network (a PostgreSQL meta DB) has threads of its own:
# a silent database server then holds up the requests that wait for it, and neither the event
# loop nor the storage threads every S3 request needs.
DATABASE_THREADS = 16
# Password checks (bcrypt, an LDAP bind) have threads of their own too: whatever else waits on
# shared threads (a silent database, a slow S3, a burst of work on anyio's or asyncio's
# default threads), a client's login is not queued behind it. As many as asyncio's default.
PASSWORD_THREADS = min(32, (os.cpu_count() or 1) + 4)


class _Threads:
    """A process's pool of worker threads, made on first use (a worker forked after the
    parent made one makes its own)."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._pool: tuple[int, ThreadPoolExecutor] | None = None  # (its process, the pool)
        self._lock = threading.Lock()

    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._pool[0] != os.getpid():
                made = ThreadPoolExecutor(self._size, thread_name_prefix=self._name)
                self._pool = (os.getpid(), made)
            return self._pool[1]


_STORAGE = _Threads(STORAGE_THREADS, "ocireg-storage")
_DATABASE = _Threads(DATABASE_THREADS, "ocireg-database")
_PASSWORDS = _Threads(PASSWORD_THREADS, "ocireg-password")


async def run_storage_work(remote: bool, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``: on a storage worker thread when ``remote`` (storage is asked over the
    network; awaited to its end, see the module's docstring), else here, on the loop."""
    return await _run(_STORAGE, remote, call, *args)


async def run_database_work(remote: bool, call: Callable[..., T], *args: Any) -> T:
    """``run_storage_work`` for a database's work: on the database threads when ``remote``
    (PostgreSQL), else here (the local SQLite file)."""
    return await _run(_DATABASE, remote, call, *args)


async def run_password_check(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, a password check, on the password threads. Not awaited to its end
    when cancelled (unlike storage and database work): a check changes nothing, and a client
    gone need not wait for an LDAP server's answer."""
    return await asyncio.wrap_future(_PASSWORDS.pool().submit(call, *args))


def database_work_soon(call: Callable[..., object], *args: Any) -> None:
    """``call(*args)`` on a database thread, not awaited: for work whose outcome nobody waits
    for (a row that only counts until it is checked again, a history line). A failure is
    logged; once the threads are shut (the interpreter exiting) the work is dropped, logged."""

    def logged() -> None:
        try:
            call(*args)
        except Exception:
            log.exception("database work %s failed", getattr(call, "__qualname__", call))

    try:
        _DATABASE.pool().submit(logged)
    except RuntimeError as exc:  # shut: nothing runs any more
        log.warning("database work %s dropped: %s", getattr(call, "__qualname__", call), exc)


async def _run(threads: _Threads, remote: bool, call: Callable[..., T], *args: Any) -> T:
    if not remote:
        return call(*args)
    context = contextvars.copy_context()  # (the request's, as a call made here would see)
    done = asyncio.wrap_future(threads.pool().submit(context.run, call, *args))
    return await finish(done)


async def finish(done: asyncio.Future[T]) -> T:
    """The result of ``done``, waited for to its end: a cancellation meanwhile (anyio's
    scopes or a plain ``Task.cancel``) is raised once it is done."""
    cancelled = False
    with anyio.CancelScope(shield=True):  # (else an anyio scope cancels every await again)
        while not done.done():
            try:
                await asyncio.shield(done)
            except asyncio.CancelledError:
                cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return done.result()
