"""The outbox: events waiting for delivery, in the meta DB file, in tables of their own (made
and kept lean by :mod:`.schema`).

``events_outbox`` holds each event once (its stable id, repository, type, time and data);
``events_pending`` holds one row per (sink, event) still to deliver, with its attempts and when
it is next due; ``events_sinks`` counts what each sink was sent, failed and dropped. An event
that no sink wants is never written; one whose last pending row goes is deleted.

``events_intents`` holds the events of changes not yet known to be committed: the producer
writes an event with its intent before the change's commit (``intend``), and settles it after
(``confirm``, or ``drop`` when the change did not happen). An event with an intent is not
delivered, nor any later event of its repository; the intents of a process that died are
settled at start-up against storage (see :mod:`.reconcile`).

Several worker processes share the file (WAL). Each opens its own connection; writes from the
request path are one short transaction (``record``); the sender's are made in a thread. A
push's intents may also be written from the event loop (``try_intend_groups``), on a second
connection that never waits for SQLite's lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .schema import create

QUICK_CHECKPOINT_PAGES = 4000  # see ``_quick_connection``
_NO_SEQ = 2**63 - 1  # above every seq: no intent holds a repository back


@dataclass(frozen=True)
class Stored:
    """One event as the outbox keeps it."""

    id: str
    repo: str
    type: str
    time: str
    data: str  # JSON text


@dataclass(frozen=True)
class Intent:
    """An event written before its change's commit and not settled yet."""

    seq: int
    repo: str
    owner: str  # the process that wrote it (see .reconcile.process_identity)
    change: str  # JSON: what storage shows when the change happened


@dataclass(frozen=True)
class Due:
    """A pending delivery that is due: the oldest undelivered event of its repository."""

    seq: int
    attempts: int
    event: Stored


@dataclass(frozen=True)
class SinkFigures:
    sent: int
    failed: int
    dropped: int
    queued: int


class Outbox:
    def __init__(self, path: Path | None, durable: bool = False) -> None:
        """``durable``: an intent survives a power loss too, not only a crash of the process
        (``synchronous=FULL`` for its transaction; given when storage fsyncs its commits)."""
        where = str(path) if path is not None else ":memory:"
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(where, check_same_thread=False, timeout=30, isolation_level=None)
        self._lock = threading.Lock()
        self._durable = durable and path is not None
        self._path = path
        # the connection of ``try_intend_groups``: (its process id, the connection), opened
        # on first use in the process that uses it
        self._quick: tuple[int, sqlite3.Connection] | None = None
        self._quick_lock = threading.Lock()
        self._closed = False
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            create(self._db)

    @contextmanager
    def _transaction(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:  # a failed COMMIT too: never leave the transaction open
                    if self._db.in_transaction:  # (else the write lock stays held)
                        self._db.execute("ROLLBACK")
                    raise
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._quick_lock:
            quick, self._quick, self._closed = self._quick, None, True
            if quick is not None:
                quick[1].close()

    # -- producing ------------------------------------------------------------------------
    def record(self, event: Stored, sinks: Iterable[str]) -> None:
        """Queue ``event`` for ``sinks`` in one transaction (nothing when no sink wants it)."""
        wanted = list(sinks)
        if not wanted:
            return
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO events_outbox (id, repo, type, time, data) VALUES (?, ?, ?, ?, ?)",
                (event.id, event.repo, event.type, event.time, event.data),
            )
            seq = cursor.lastrowid
            db.executemany(
                "INSERT INTO events_pending (sink, seq, repo) VALUES (?, ?, ?)",
                [(sink, seq, event.repo) for sink in wanted],
            )

    def intend(
        self,
        events: list[tuple[Stored, list[str], str]],
        owner: str,
        confirmed: list[int] | None = None,
    ) -> list[int]:
        """Queue each (event, sinks, change) with an intent, in one transaction, before the
        change is committed, and confirm the intents ``confirmed`` in the same transaction;
        the seqs to settle (those no sink wants are skipped)."""
        return self.intend_groups([events], owner, confirmed)[0]

    def intend_groups(
        self,
        groups: list[list[tuple[Stored, list[str], str]]],
        owner: str,
        confirmed: list[int] | None = None,
    ) -> list[list[int]]:
        """``intend`` for the events of several changes at once, in one transaction (group
        commit): each group's seqs to settle."""
        if _nothing_to_write(groups, confirmed):
            return [[] for _ in groups]
        with self._transaction(self._durable) as db:
            return self._intend_groups(db, groups, owner, confirmed)

    @property
    def can_try(self) -> bool:
        """Whether ``try_intend_groups`` may ever write: not for an outbox in memory, whose
        one connection is its database, nor a durable one (its commit waits for the disk)."""
        return self._path is not None and not self._durable

    def try_intend_groups(
        self,
        groups: list[list[tuple[Stored, list[str], str]]],
        owner: str,
        confirmed: list[int] | None = None,
    ) -> list[list[int]] | None:
        """``intend_groups`` if it can be done without waiting, else None, with nothing
        written: for a caller on the event loop, where a wait for SQLite's write lock (held
        by another process, or by this one's writer thread) would stall every request; always
        None unless ``can_try``, and once closed."""
        if not self.can_try:
            return None
        if _nothing_to_write(groups, confirmed):
            return [[] for _ in groups]
        if not self._quick_lock.acquire(blocking=False):
            return None
        try:
            if self._closed:
                return None
            db = self._quick_connection()
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # locked: another writer holds it
                return None
            try:
                written = self._intend_groups(db, groups, owner, confirmed)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return written
        finally:
            self._quick_lock.release()

    def _quick_connection(self) -> sqlite3.Connection:
        """The connection that never waits for a lock (``timeout=0``), this process's own
        (a forked worker opens its own: a connection must not cross a fork)."""
        pid = os.getpid()
        if self._quick is None or self._quick[0] != pid:
            assert self._path is not None
            db = sqlite3.connect(
                str(self._path), check_same_thread=False, timeout=0, isolation_level=None
            )
            db.execute("PRAGMA synchronous=NORMAL")  # per connection; FULL would fsync the WAL
            # Its commits leave copying the WAL into the database (4 MiB at SQLite's default
            # of 1,000 pages, a stall on the loop) to the other connections' commits: this
            # class's other, the meta DB's, the sender's. Should those stop committing (every
            # sink down for minutes, a meta DB on PostgreSQL), it copies past 4,000 pages,
            # so the WAL stays bounded.
            db.execute(f"PRAGMA wal_autocheckpoint={QUICK_CHECKPOINT_PAGES}")
            self._quick = (pid, db)
        return self._quick[1]

    @classmethod
    def _intend_groups(
        cls,
        db: sqlite3.Connection,
        groups: list[list[tuple[Stored, list[str], str]]],
        owner: str,
        confirmed: list[int] | None,
    ) -> list[list[int]]:
        """The statements of ``intend_groups``, in the caller's transaction."""
        if confirmed:
            db.executemany("DELETE FROM events_intents WHERE seq = ?", [(s,) for s in confirmed])
        return [cls._intend(db, events, owner) for events in groups]

    @staticmethod
    def _intend(
        db: sqlite3.Connection, events: list[tuple[Stored, list[str], str]], owner: str
    ) -> list[int]:
        seqs = []
        for event, sinks, change in events:
            if not sinks:
                continue
            cursor = db.execute(
                "INSERT INTO events_outbox (id, repo, type, time, data) VALUES (?, ?, ?, ?, ?)",
                (event.id, event.repo, event.type, event.time, event.data),
            )
            seq = cursor.lastrowid
            assert seq is not None
            db.executemany(
                "INSERT INTO events_pending (sink, seq, repo) VALUES (?, ?, ?)",
                [(sink, seq, event.repo) for sink in sinks],
            )
            db.execute(
                "INSERT INTO events_intents (seq, repo, owner, change) VALUES (?, ?, ?, ?)",
                (seq, event.repo, owner, change),
            )
            seqs.append(seq)
        return seqs

    def confirm(self, seqs: list[int]) -> None:
        """The changes of ``seqs`` are committed: their events may go."""
        if seqs:
            with self._transaction() as db:
                db.executemany("DELETE FROM events_intents WHERE seq = ?", [(s,) for s in seqs])

    def drop(self, seqs: list[int]) -> None:
        """The changes of ``seqs`` did not happen: their events go without being sent."""
        if not seqs:
            return
        with self._transaction() as db:
            for table in ("events_intents", "events_pending", "events_outbox"):
                db.executemany(f"DELETE FROM {table} WHERE seq = ?", [(s,) for s in seqs])

    def intents(self) -> list[Intent]:
        """Every unsettled intent, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, repo, owner, change FROM events_intents ORDER BY seq"
            ).fetchall()
        return [Intent(*row) for row in rows]

    # -- delivering -----------------------------------------------------------------------
    def due(self, sink: str, now: float, repositories: int, run: int) -> list[list[Due]]:
        """For at most ``repositories`` repositories whose oldest pending event for ``sink`` is
        due now: that event and up to ``run - 1`` after it, oldest first, none with an intent
        or after one. A repository's later events wait behind its oldest, so each repository's
        events go in order."""
        with self._lock:
            # Each repository with pending events, found by a seek per repository in the
            # (repo, sink, seq) index (a skip-scan), then the sink's oldest of it: a sink's
            # heads without reading every sink's rows (a sink that is down may hold many).
            heads = self._db.execute(
                """
                WITH RECURSIVE repos(repo) AS (
                    SELECT MIN(repo) FROM events_pending
                    UNION ALL
                    SELECT (SELECT MIN(repo) FROM events_pending WHERE repo > repos.repo)
                    FROM repos WHERE repos.repo IS NOT NULL
                )
                SELECT p.repo FROM repos JOIN events_pending p ON p.sink = ?1 AND p.seq = (
                    SELECT MIN(seq) FROM events_pending WHERE repo = repos.repo AND sink = ?1
                )
                WHERE p.due <= ?2 AND p.seq NOT IN (SELECT seq FROM events_intents)
                ORDER BY p.seq LIMIT ?3
                """,
                (sink, now, repositories),
            ).fetchall()
            runs = []
            for (repo,) in heads:
                rows = self._db.execute(
                    """
                    SELECT p.seq, p.attempts, o.id, o.repo, o.type, o.time, o.data
                    FROM events_pending p JOIN events_outbox o ON o.seq = p.seq
                    WHERE p.sink = ?1 AND p.repo = ?2 AND p.seq < COALESCE(
                        (SELECT MIN(seq) FROM events_intents WHERE repo = ?2), ?4
                    )
                    ORDER BY p.seq LIMIT ?3
                    """,
                    (sink, repo, run, _NO_SEQ),
                ).fetchall()
                runs.append([Due(row[0], row[1], Stored(*row[2:])) for row in rows])
        return runs

    def delivered(self, sink: str, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM events_pending WHERE sink = ? AND seq = ?", [(sink, s) for s in seqs]
            )
            db.executemany(
                "DELETE FROM events_outbox WHERE seq = ?1 AND NOT EXISTS "
                "(SELECT 1 FROM events_pending WHERE seq = ?1)",
                [(s,) for s in seqs],
            )
            self._count(db, sink, "sent", len(seqs))

    def failed(self, sink: str, failures: list[tuple[int, float, str]]) -> None:
        """Each (seq, when it is due again, why) failed once more."""
        if not failures:
            return
        with self._transaction() as db:
            db.executemany(
                "UPDATE events_pending SET attempts = attempts + 1, due = ?, error = ? "
                "WHERE sink = ? AND seq = ?",
                [(due, error[:500], sink, seq) for seq, due, error in failures],
            )
            self._count(db, sink, "failed", len(failures))

    def last_seq(self) -> int:
        """The highest seq ever given to an event (AUTOINCREMENT: never reused, never lower
        after deletes), so that the backlog grew by at most its growth since a count."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'events_outbox'"
            ).fetchone()
        return 0 if row is None else int(row[0])

    def trim(self, sink: str, keep: int) -> tuple[int, int]:
        """Drop ``sink``'s oldest pending events beyond ``keep``: (how many were dropped, how
        many are queued for it now)."""
        with self._lock:  # counted first without the write lock, which pushes need
            (queued,) = self._db.execute(
                "SELECT COUNT(*) FROM events_pending WHERE sink = ?", (sink,)
            ).fetchone()
        if queued <= keep:
            return 0, int(queued)
        with self._transaction() as db:
            (queued,) = db.execute(
                "SELECT COUNT(*) FROM events_pending WHERE sink = ?", (sink,)
            ).fetchone()
            extra = queued - keep
            if extra <= 0:
                return 0, int(queued)
            db.execute(
                "DELETE FROM events_pending WHERE sink = ?1 AND seq IN "
                "(SELECT seq FROM events_pending WHERE sink = ?1 ORDER BY seq LIMIT ?2)",
                (sink, extra),
            )
            self._orphans(db)
            self._count(db, sink, "dropped", extra)
            return int(extra), keep

    def forget_sinks_except(self, sinks: Iterable[str]) -> int:
        """Drop what is queued for sinks no longer configured; how many deliveries went."""
        kept = list(sinks)
        marks = ",".join("?" * len(kept)) or "NULL"
        with self._transaction() as db:
            gone = db.execute(
                f"DELETE FROM events_pending WHERE sink NOT IN ({marks})", kept
            ).rowcount
            if gone:
                self._orphans(db)
            return int(gone)

    # -- reporting ------------------------------------------------------------------------
    def figures(self) -> dict[str, SinkFigures]:
        with self._lock:
            counted = {
                row[0]: row[1:]
                for row in self._db.execute("SELECT sink, sent, failed, dropped FROM events_sinks")
            }
            queued = dict(
                self._db.execute("SELECT sink, COUNT(*) FROM events_pending GROUP BY sink")
            )
        return {
            sink: SinkFigures(*_counts(counted.get(sink)), queued=queued.get(sink, 0))
            for sink in set(counted) | set(queued)
        }

    def backlog(self) -> tuple[str | None, dict[str, int]]:
        """The time of the oldest event waiting for its first try at the head of its
        repository's queue for some sink (None: none), and each sink's queued count."""
        with self._lock:
            row = self._db.execute(
                """
                SELECT o.time FROM events_pending p JOIN events_outbox o ON o.seq = p.seq
                WHERE p.attempts = 0 AND (p.sink, p.seq) IN (
                    SELECT sink, MIN(seq) FROM events_pending GROUP BY sink, repo
                ) AND p.seq NOT IN (SELECT seq FROM events_intents)
                ORDER BY p.seq LIMIT 1
                """
            ).fetchone()
            queued = dict(
                self._db.execute("SELECT sink, COUNT(*) FROM events_pending GROUP BY sink")
            )
        return (None if row is None else str(row[0])), queued

    def last_error(self, sink: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT error FROM events_pending WHERE sink = ? AND error IS NOT NULL "
                "ORDER BY seq LIMIT 1",
                (sink,),
            ).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _orphans(db: sqlite3.Connection) -> None:
        db.execute(
            "DELETE FROM events_outbox WHERE NOT EXISTS "
            "(SELECT 1 FROM events_pending p WHERE p.seq = events_outbox.seq)"
        )
        db.execute(
            "DELETE FROM events_intents WHERE NOT EXISTS "
            "(SELECT 1 FROM events_outbox o WHERE o.seq = events_intents.seq)"
        )

    @staticmethod
    def _count(db: sqlite3.Connection, sink: str, column: str, amount: int) -> None:
        db.execute("INSERT OR IGNORE INTO events_sinks (sink) VALUES (?)", (sink,))
        db.execute(
            f"UPDATE events_sinks SET {column} = {column} + ? WHERE sink = ?", (amount, sink)
        )


def _nothing_to_write(
    groups: list[list[tuple[Stored, list[str], str]]], confirmed: list[int] | None
) -> bool:
    """No sink wants any of the events, and no intent waits for its confirmation."""
    return not confirmed and not any(sinks for events in groups for _, sinks, _ in events)


def _counts(row: tuple[int, ...] | None) -> tuple[int, int, int]:
    if row is None:
        return (0, 0, 0)
    return (int(row[0]), int(row[1]), int(row[2]))
