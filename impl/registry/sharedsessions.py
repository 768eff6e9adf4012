"""Who opened each upload session, in PostgreSQL when instances share storage and a PostgreSQL
meta DB (``storage.cacheDriver.name: postgres``), so ``http.maxUploadSessionsPerClient`` holds
across every instance rather than in each.

A session's bytes are in storage (the bucket), so any instance can continue, finish or cancel
it, and its existence is the upload file's. What storage cannot say is whose it is: that is a
row of ``upload_sessions``, written by the instance that starts the session and removed by
whichever one ends it (or by GC). An instance that dies leaves rows whose files are gone; they
are found at the client's cap by the upload store, which checks them against storage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from ocireg.logs import event
from ocireg.registry.sharedlocks import AdvisoryLocks, lock_id

log = logging.getLogger("ocireg.uploads")
_TABLE = (
    "CREATE TABLE IF NOT EXISTS upload_sessions (repo TEXT NOT NULL, session TEXT NOT NULL, "
    "client TEXT NOT NULL, started DOUBLE PRECISION NOT NULL, PRIMARY KEY (repo, session))"
)
_BY_CLIENT = "CREATE INDEX IF NOT EXISTS upload_sessions_by_client ON upload_sessions (client)"


class SharedUploadSessions:
    def __init__(self, locks: AdvisoryLocks) -> None:
        self._locks = locks
        self._table_made = False  # made at first use: building a registry connects to nothing

    def _make_table(self, connection: Any) -> None:
        if self._table_made:
            return
        with connection.transaction():
            # concurrent CREATE ... IF NOT EXISTS race in PostgreSQL's catalogs
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id("upload-ddl"),))
            connection.execute(_TABLE)
            connection.execute(_BY_CLIENT)
        self._table_made = True

    def admit(self, repo: str, session: str, client: str, cap: int) -> bool:
        """Record the session as ``client``'s unless the client has ``cap`` open already;
        whether it was recorded. Clients are serialised, so two instances never both admit
        the one session that reaches the cap."""
        with self._locks.borrowed() as connection:
            self._make_table(connection)
            return self._admit(connection, repo, session, client, cap)

    @staticmethod
    def _admit(connection: Any, repo: str, session: str, client: str, cap: int) -> bool:
        with connection.transaction():
            connection.execute(
                "SELECT pg_advisory_xact_lock(%s)", (lock_id("upload-client:" + client),)
            )
            (count,) = connection.execute(
                "SELECT count(*) FROM upload_sessions WHERE client = %s", (client,)
            ).fetchone()
            if count >= cap:
                return False
            connection.execute(
                "INSERT INTO upload_sessions VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (repo, session, client, time.time()),
            )
            return True

    def of_client(self, client: str, started_before: float) -> set[tuple[str, str]]:
        """The (repository, session) pairs recorded as the client's, started before a time
        (epoch seconds)."""
        with self._locks.borrowed() as connection:
            self._make_table(connection)
            rows = connection.execute(
                "SELECT repo, session FROM upload_sessions WHERE client = %s AND started < %s",
                (client, started_before),
            ).fetchall()
        return {(repo, session) for repo, session in rows}

    def forget(self, sessions: Iterable[tuple[str, str]]) -> None:
        """Sessions that ended (or are gone), whoever recorded them. Never fails: a row left
        behind (the database was away) only counts until the client's next check at its cap,
        which finds the session gone from storage; the upload itself has succeeded."""
        import psycopg

        pairs = list(sessions)
        if not pairs:
            return
        try:
            with self._locks.borrowed() as connection:
                self._make_table(connection)
                with connection.transaction():
                    connection.cursor().executemany(
                        "DELETE FROM upload_sessions WHERE repo = %s AND session = %s", pairs
                    )
        except psycopg.Error as exc:
            event(log, logging.WARNING, "upload sessions not forgotten", sessions=len(pairs),
                  error=str(exc))  # fmt: skip
