"""Per-key locks shared by instances on several machines: PostgreSQL advisory locks, taken
when the meta DB is PostgreSQL (``storage.cacheDriver.name: postgres``).

``flock`` serialises the processes of one machine; instances on several machines that share a
bucket also need a repository's ``index.json`` read-modify-write serialised between them, or
concurrent tag pushes lose tags. A session-level advisory lock is held on a connection of its
own for as long as the key is held (a connection that dies releases its locks, as a process
that dies releases its flocks); idle connections are kept for the next key.

:class:`SharedRounds` is the scheduler's claim of a periodic round on the same connections.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ocireg.meta.pgconnect import connect

_NAMESPACE = b"ocireg-key:"  # keeps these ids apart from any other advisory lock's
_KEEP_IDLE = 8  # connections kept open between locks


def lock_id(key: str) -> int:
    """A signed 64-bit id for ``key`` (PostgreSQL's advisory lock space)."""
    digest = hashlib.sha256(_NAMESPACE + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLocks:
    def __init__(self, url: str) -> None:
        self._url = url
        self._idle: list[Any] = []
        self._guard = threading.Lock()

    def acquire(self, key: str) -> Any:
        """Block until ``key`` is held; the connection that holds it (for :meth:`release`).
        For a thread: the event loop must not wait here."""
        connection = self._take()
        try:
            connection.execute("SELECT pg_advisory_lock(%s)", (lock_id(key),))
        except BaseException:
            connection.close()  # whatever it holds goes with it
            raise
        return connection

    def release(self, key: str, connection: Any) -> None:
        import psycopg

        try:
            connection.execute("SELECT pg_advisory_unlock(%s)", (lock_id(key),))
        except psycopg.Error:
            connection.close()  # a closed session holds nothing
            return
        self._give(connection)

    @contextmanager
    def borrowed(self) -> Iterator[Any]:
        """A connection of the pool, holding no lock, for a few statements (autocommit; open
        a transaction with ``connection.transaction()``); closed if they fail."""
        connection = self._take()
        try:
            yield connection
        except BaseException:
            connection.close()
            raise
        self._give(connection)

    def _give(self, connection: Any) -> None:
        with self._guard:
            if len(self._idle) < _KEEP_IDLE:
                self._idle.append(connection)
                return
        connection.close()

    def _take(self) -> Any:
        with self._guard:
            while self._idle:
                connection = self._idle.pop()
                if not (connection.closed or connection.broken):
                    return connection
        return connect(self._url, autocommit=True, application_name="ocireg-locks")

    def close(self) -> None:
        with self._guard:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


@dataclass(frozen=True)
class Round:
    ours: bool  # this instance runs the round now
    next_due: float  # when the job is due next (epoch seconds), whoever runs it
    _connection: Any = None  # holds the round's advisory lock while it runs


class SharedRounds:
    """The scheduler's claim of a periodic job's round across instances: the round is held as
    an advisory lock, and the time the last round started is a row, so a round runs on one
    instance and is due ``interval`` after the last one, wherever it ran."""

    def __init__(self, locks: AdvisoryLocks) -> None:
        self._locks = locks
        self._table_made = False

    def claim(self, job: str, interval: float) -> Round:
        """Blocking (for a thread); never waits for another instance's round."""
        connection = self._locks._take()
        try:
            return self._claim(connection, job, interval)
        except BaseException:
            connection.close()
            raise

    def _claim(self, connection: Any, job: str, interval: float) -> Round:
        key = lock_id("round:" + job)
        (held,) = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not held:  # running elsewhere right now
            self._locks._give(connection)
            return Round(False, time.time() + interval)
        if not self._table_made:
            connection.execute(_ROUNDS_TABLE)
            self._table_made = True
        row = connection.execute(
            "SELECT last FROM scheduler_rounds WHERE job = %s", (job,)
        ).fetchone()
        last, now = (row[0] if row else 0.0), time.time()
        if now - last < interval:
            self._locks.release("round:" + job, connection)
            return Round(False, last + interval)
        connection.execute(
            "INSERT INTO scheduler_rounds (job, last) VALUES (%s, %s) "
            "ON CONFLICT (job) DO UPDATE SET last = excluded.last",
            (job, now),
        )
        return Round(True, now + interval, connection)

    def release(self, job: str, held: Round) -> None:
        if held._connection is not None:
            self._locks.release("round:" + job, held._connection)


_ROUNDS_TABLE = (
    "CREATE TABLE IF NOT EXISTS scheduler_rounds "
    "(job TEXT PRIMARY KEY, last DOUBLE PRECISION NOT NULL)"
)
