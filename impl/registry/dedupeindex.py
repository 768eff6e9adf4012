"""The dedupe index of an s3 root: which object holds each digest's content, and which
repositories reference it (see :mod:`ocireg.registry.refdedupe`).

It lives in the meta DB: SQLite (``<root>/.ocireg/meta.db``, its own tables beside the meta DB's)
for one instance, PostgreSQL when instances share the bucket (``storage.cacheDriver.name:
postgres``), so that every instance sees every reference. Rows carry the root they belong to
(``store``: the bucket and prefix), since sub-paths may keep their content elsewhere.

Like the rest of the meta DB it is derived from storage: a placeholder at a repository's blob
path is a reference, and GC's sweep records a placeholder's row again where it is missing
before it would remove content.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ocireg.registry.sharedlocks import AdvisoryLocks, lock_id

_TABLES = (
    "CREATE TABLE IF NOT EXISTS dedupe_content (store TEXT NOT NULL, digest TEXT NOT NULL, "
    "path TEXT NOT NULL, size BIGINT NOT NULL, PRIMARY KEY (store, digest))",
    "CREATE TABLE IF NOT EXISTS dedupe_refs (store TEXT NOT NULL, digest TEXT NOT NULL, "
    "repo TEXT NOT NULL, added DOUBLE PRECISION NOT NULL, PRIMARY KEY (store, digest, repo))",
)


class DedupeIndex(Protocol):
    def refer(self, store: str, digest: str, repo: str, path: str, size: int) -> None:
        """Record that ``repo`` references ``digest``, whose content is ``path`` (committed
        when this returns: the caller writes the placeholder afterwards)."""

    def drop(self, store: str, digest: str, repo: str) -> None:
        """``repo`` no longer references ``digest`` (its placeholder is gone)."""

    def holders(self, store: str, digest: str) -> dict[str, float]:
        """The repositories referencing ``digest``, with when each reference was recorded."""

    def forget(self, store: str, digest: str) -> None:
        """The content of ``digest`` is gone: its row and any references."""

    def content(self, store: str, digest: str) -> tuple[str, int] | None:
        """Where the content of ``digest`` is and its size, as recorded."""


class SQLiteDedupeIndex:
    """In the meta DB's SQLite file (or in memory), one connection guarded by a lock; each
    change in an immediate transaction, so worker processes sharing the file serialise."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(
            str(path), timeout=30, check_same_thread=False, isolation_level=None
        )
        self._guard = threading.Lock()
        with self._changing() as db:
            for statement in _TABLES:
                db.execute(statement)

    @contextmanager
    def _changing(self) -> Iterator[sqlite3.Connection]:
        with self._guard:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:  # a failed COMMIT too: never leave the transaction open
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def refer(self, store: str, digest: str, repo: str, path: str, size: int) -> None:
        with self._changing() as db:
            db.execute(
                "INSERT OR REPLACE INTO dedupe_content VALUES (?, ?, ?, ?)",
                (store, digest, path, size),
            )
            db.execute(
                "INSERT OR REPLACE INTO dedupe_refs VALUES (?, ?, ?, ?)",
                (store, digest, repo, time.time()),
            )

    def drop(self, store: str, digest: str, repo: str) -> None:
        with self._changing() as db:
            db.execute(
                "DELETE FROM dedupe_refs WHERE store = ? AND digest = ? AND repo = ?",
                (store, digest, repo),
            )

    def holders(self, store: str, digest: str) -> dict[str, float]:
        with self._guard:
            rows = self._db.execute(
                "SELECT repo, added FROM dedupe_refs WHERE store = ? AND digest = ?",
                (store, digest),
            ).fetchall()
        return {repo: float(added) for repo, added in rows}

    def forget(self, store: str, digest: str) -> None:
        with self._changing() as db:
            for table in ("dedupe_refs", "dedupe_content"):
                db.execute(f"DELETE FROM {table} WHERE store = ? AND digest = ?", (store, digest))

    def content(self, store: str, digest: str) -> tuple[str, int] | None:
        with self._guard:
            row = self._db.execute(
                "SELECT path, size FROM dedupe_content WHERE store = ? AND digest = ?",
                (store, digest),
            ).fetchone()
        return (str(row[0]), int(row[1])) if row else None


class PostgresDedupeIndex:
    """In the shared PostgreSQL meta DB, on the advisory locks' connection pool."""

    def __init__(self, locks: AdvisoryLocks) -> None:
        self._locks = locks
        self._tables_made = False  # made at first use: building a registry connects to nothing

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._locks.borrowed() as connection:
            if not self._tables_made:
                with connection.transaction():
                    # concurrent CREATE ... IF NOT EXISTS race in PostgreSQL's catalogs
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id("dedupe-ddl"),))
                    for statement in _TABLES:
                        connection.execute(statement)
                self._tables_made = True
            yield connection

    def refer(self, store: str, digest: str, repo: str, path: str, size: int) -> None:
        with self._connection() as connection, connection.transaction():
            connection.execute(
                "INSERT INTO dedupe_content VALUES (%s, %s, %s, %s) ON CONFLICT (store, digest) "
                "DO UPDATE SET path = excluded.path, size = excluded.size",
                (store, digest, path, size),
            )
            connection.execute(
                "INSERT INTO dedupe_refs VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (store, digest, repo) DO UPDATE SET added = excluded.added",
                (store, digest, repo, time.time()),
            )

    def drop(self, store: str, digest: str, repo: str) -> None:
        with self._connection() as connection:
            connection.execute(
                "DELETE FROM dedupe_refs WHERE store = %s AND digest = %s AND repo = %s",
                (store, digest, repo),
            )

    def holders(self, store: str, digest: str) -> dict[str, float]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT repo, added FROM dedupe_refs WHERE store = %s AND digest = %s",
                (store, digest),
            ).fetchall()
        return {repo: float(added) for repo, added in rows}

    def forget(self, store: str, digest: str) -> None:
        with self._connection() as connection, connection.transaction():
            for table in ("dedupe_refs", "dedupe_content"):
                connection.execute(
                    f"DELETE FROM {table} WHERE store = %s AND digest = %s", (store, digest)
                )

    def content(self, store: str, digest: str) -> tuple[str, int] | None:
        with self._connection() as connection:
            row = connection.execute(
                "SELECT path, size FROM dedupe_content WHERE store = %s AND digest = %s",
                (store, digest),
            ).fetchone()
        return (str(row[0]), int(row[1])) if row else None
