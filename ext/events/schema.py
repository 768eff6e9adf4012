"""The outbox's tables, and bringing a file written by an older ocireg up to them.

Every push writes one transaction of intents, and each B-tree page it changes is one more
page in SQLite's write-ahead log (4 KiB, two writes to the file); on ext4 the outbox's writes
were most of what an events sink cost a push (``bench/RESULTS.md``, stop 20). So the tables
keep the pages a push touches few (11 before, about 6 now):

- ``events_pending`` is keyed by (seq, sink): the rows of one event for every sink sit side by
  side, on one page, where (sink, seq) put each sink's row on a page of its own; the key also
  serves the lookups by seq that needed an index of their own.
- one index of pending rows, (repo, sink, seq): each repository's queue per sink, in order,
  for the sender; one page for both sinks' rows of an event, as the repository leads.
- no index on an event's id (its uniqueness is the id's own: a random UUID) nor on the
  intents' repository (the table holds only the changes in flight, a handful of rows).

A file written before (``PRIMARY KEY (sink, seq)``, ``id ... UNIQUE``, three more indexes) is
rebuilt at start-up, in one transaction, rows and AUTOINCREMENT counter kept (see
``migrate``): whichever process opens it first does it, the others then find it done.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS events_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    repo TEXT NOT NULL,
    type TEXT NOT NULL,
    time TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events_pending (
    sink TEXT NOT NULL,
    seq INTEGER NOT NULL,
    repo TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due REAL NOT NULL DEFAULT 0,
    error TEXT,
    PRIMARY KEY (seq, sink)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events_intents (
    seq INTEGER PRIMARY KEY,
    repo TEXT NOT NULL,
    owner TEXT NOT NULL,
    change TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events_sinks (
    sink TEXT PRIMARY KEY,
    sent INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0
);
"""

QUEUES_INDEX = (
    "CREATE INDEX IF NOT EXISTS events_pending_queues ON events_pending (repo, sink, seq)"
)

# the indexes of files written before: their pages were written on every push
OLD_INDEXES = ("events_pending_heads", "events_pending_seq", "events_intents_repo")

_OUTBOX_COLUMNS = "seq, id, repo, type, time, data"
_PENDING_COLUMNS = "sink, seq, repo, attempts, due, error"


def create(db: sqlite3.Connection) -> None:
    """The tables, made when missing, and an older file's brought up to them."""
    db.executescript(SCHEMA)
    migrate(db)


def migrate(db: sqlite3.Connection) -> None:
    """Rebuild what an older ocireg made (see the module's docstring), in one transaction;
    nothing when there is nothing to do (the usual case: one look at the schema)."""
    if not _outdated(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if _outbox_has_unique_id(db):  # (looked at again: another process may have done it)
            _rebuild_outbox(db)
        if _pending_keyed_by_sink(db):
            _rebuild_pending(db)
        for index in OLD_INDEXES:
            db.execute(f"DROP INDEX IF EXISTS {index}")
        db.execute(QUEUES_INDEX)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _outdated(db: sqlite3.Connection) -> bool:
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return (
        "events_pending_queues" not in indexes
        or bool(indexes & set(OLD_INDEXES))
        or _outbox_has_unique_id(db)
        or _pending_keyed_by_sink(db)
    )


def _outbox_has_unique_id(db: sqlite3.Connection) -> bool:
    # PRAGMA index_list: (seq, name, unique, origin, partial); origin "u": a UNIQUE column
    return any(row[3] == "u" for row in db.execute("PRAGMA index_list(events_outbox)"))


def _pending_keyed_by_sink(db: sqlite3.Connection) -> bool:
    # PRAGMA table_info: (cid, name, type, notnull, default, pk): pk is the key position
    positions = {row[1]: row[5] for row in db.execute("PRAGMA table_info(events_pending)")}
    return positions.get("sink") == 1


def _rebuild_outbox(db: sqlite3.Connection) -> None:
    """Without the UNIQUE on id; the AUTOINCREMENT counter kept, so no seq is ever given
    twice (dropping the table drops its counter, and the copy's would be the highest seq
    left, below one given to an event since delivered)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events_outbox'").fetchone()
    counter = 0 if row is None else int(row[0])
    db.execute(
        "CREATE TABLE events_outbox_lean (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "id TEXT NOT NULL, repo TEXT NOT NULL, type TEXT NOT NULL, time TEXT NOT NULL, "
        "data TEXT NOT NULL)"
    )
    db.execute(
        f"INSERT INTO events_outbox_lean ({_OUTBOX_COLUMNS}) "
        f"SELECT {_OUTBOX_COLUMNS} FROM events_outbox"
    )
    db.execute("DROP TABLE events_outbox")
    db.execute("ALTER TABLE events_outbox_lean RENAME TO events_outbox")
    (highest,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events_outbox").fetchone()
    db.execute("DELETE FROM sqlite_sequence WHERE name IN ('events_outbox', 'events_outbox_lean')")
    db.execute(
        "INSERT INTO sqlite_sequence (name, seq) VALUES ('events_outbox', ?)",
        (max(counter, int(highest)),),
    )


def _rebuild_pending(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE events_pending_lean (sink TEXT NOT NULL, seq INTEGER NOT NULL, "
        "repo TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL DEFAULT 0, "
        "error TEXT, PRIMARY KEY (seq, sink)) WITHOUT ROWID"
    )
    db.execute(
        f"INSERT INTO events_pending_lean ({_PENDING_COLUMNS}) "
        f"SELECT {_PENDING_COLUMNS} FROM events_pending"
    )
    db.execute("DROP TABLE events_pending")  # (its indexes go with it)
    db.execute("ALTER TABLE events_pending_lean RENAME TO events_pending")
