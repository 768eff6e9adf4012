"""Per-key locks shared by instances on several machines: PostgreSQL advisory locks, taken
when the meta DB is PostgreSQL (``storage.cacheDriver.name: postgres``).

``flock`` serialises the processes of one machine; instances on several machines that share a
bucket also need a repository's ``index.json`` read-modify-write serialised between them, or
concurrent tag pushes lose tags. A session-level advisory lock is held on a connection of its
own for as long as the key is held (a connection that dies releases its locks, as a process
that dies releases its flocks); idle connections are kept for the next key.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

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
        with self._guard:
            if len(self._idle) < _KEEP_IDLE:
                self._idle.append(connection)
                return
        connection.close()

    def _take(self) -> Any:
        import psycopg

        with self._guard:
            while self._idle:
                connection = self._idle.pop()
                if not (connection.closed or connection.broken):
                    return connection
        return psycopg.connect(self._url, autocommit=True, application_name="ocireg-locks")

    def close(self) -> None:
        with self._guard:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
