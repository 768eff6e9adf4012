"""The outbox's tables: a file an older ocireg wrote (its events keyed by sink first, a unique
index on the event id, three indexes since dropped) is brought up to the lean tables when it is
opened, every row and the seq counter kept, and the events it held are delivered as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ocireg.ext.events.schema import OLD_INDEXES
from ocireg.ext.events.store import Outbox, Stored

# what ocireg made up to stop 19
OLD_SCHEMA = """
CREATE TABLE events_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, repo TEXT NOT NULL,
    type TEXT NOT NULL, time TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE events_pending (
    sink TEXT NOT NULL, seq INTEGER NOT NULL, repo TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL DEFAULT 0, error TEXT,
    PRIMARY KEY (sink, seq)) WITHOUT ROWID;
CREATE INDEX events_pending_heads ON events_pending (sink, repo, seq);
CREATE INDEX events_pending_seq ON events_pending (seq);
CREATE TABLE events_intents (
    seq INTEGER PRIMARY KEY, repo TEXT NOT NULL, owner TEXT NOT NULL, change TEXT NOT NULL);
CREATE INDEX events_intents_repo ON events_intents (repo, seq);
CREATE TABLE events_sinks (
    sink TEXT PRIMARY KEY, sent INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0, dropped INTEGER NOT NULL DEFAULT 0);
"""


def _old_file(path: Path) -> None:
    """Events 1-3 of a/b (3 held by an intent) and 4 of c/d, for sinks s1 and s2 (s2 has
    sent 1 already); seqs up to 10 were given (5-10 delivered and deleted since)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(OLD_SCHEMA)
    for seq, repo in ((1, "a/b"), (2, "a/b"), (3, "a/b"), (4, "c/d")):
        db.execute(
            "INSERT INTO events_outbox VALUES (?, ?, ?, 'zotregistry.image.updated', "
            "'2026-01-01T00:00:00Z', ?)",
            (seq, f"id-{seq}", repo, f'{{"n": {seq}}}'),
        )
        sinks = ["s1"] if seq == 1 else ["s1", "s2"]
        for sink in sinks:
            db.execute("INSERT INTO events_pending (sink, seq, repo) VALUES (?, ?, ?)",
                       (sink, seq, repo))  # fmt: skip
    db.execute("INSERT INTO events_intents VALUES (3, 'a/b', 'gone', '{}')")
    db.execute("INSERT INTO events_sinks (sink, sent) VALUES ('s2', 1)")
    db.execute("UPDATE sqlite_sequence SET seq = 10 WHERE name = 'events_outbox'")
    db.close()


def _schema(path: Path) -> tuple[set[str], bool, list[str]]:
    """(the indexes, whether an event id is unique, the pending rows' key columns)."""
    db = sqlite3.connect(path)
    try:
        named = "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
        indexes = {row[0] for row in db.execute(named)}
        unique = any(row[3] == "u" for row in db.execute("PRAGMA index_list(events_outbox)"))
        key = sorted((row[5], row[1]) for row in db.execute("PRAGMA table_info(events_pending)"))
    finally:
        db.close()
    return indexes, unique, [name for position, name in key if position]


def test_an_older_file_is_brought_up_to_the_lean_tables_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    _old_file(path)
    assert _schema(path) == ({*OLD_INDEXES}, True, ["sink", "seq"])
    outbox = Outbox(path)
    try:
        assert _schema(path) == ({"events_pending_queues"}, False, ["seq", "sink"])
        figures = outbox.figures()
        assert (figures["s1"].queued, figures["s2"].queued, figures["s2"].sent) == (4, 3, 1)
        assert [(intent.seq, intent.repo) for intent in outbox.intents()] == [(3, "a/b")]
        runs = outbox.due("s1", now=1.0, repositories=16, run=32)
        assert [[due.seq for due in run] for run in runs] == [[1, 2], [4]]  # 3 held back
        assert runs[0][0].event == Stored(
            "id-1", "a/b", "zotregistry.image.updated", "2026-01-01T00:00:00Z", '{"n": 1}'
        )
        new = Stored("id-new", "a/b", "zotregistry.image.updated", "2026-01-02T00:00:00Z", "{}")
        assert outbox.intend([(new, ["s1"], "{}")], "me") == [11]  # no seq given twice
        assert outbox.last_seq() == 11
    finally:
        outbox.close()


def test_a_file_brought_up_once_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    _old_file(path)
    Outbox(path).close()
    db = sqlite3.connect(path)
    (version,) = db.execute("PRAGMA schema_version").fetchone()
    db.close()
    second = Outbox(path)  # as a second worker or the sender process opens it
    try:
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA schema_version").fetchone() == (version,)
        db.close()
        assert second.figures()["s1"].queued == 4
    finally:
        second.close()


def test_a_new_file_gets_the_lean_tables(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    Outbox(path).close()
    assert _schema(path) == ({"events_pending_queues"}, False, ["seq", "sink"])
