"""The outbox's transactions: one whose COMMIT fails is rolled back, so the connection is not
left inside it holding SQLite's write lock (every later write would then fail)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ocireg.ext.events.store import Outbox, Stored


def _event(number: int) -> Stored:
    return Stored(f"id-{number}", "a/b", "zotregistry.image.updated", "2026-01-01T00:00:00Z", "{}")


def test_a_failed_commit_is_rolled_back_and_the_next_write_works(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "meta.db")
    try:
        # A deferred foreign key fails only at COMMIT: a trigger breaks it on the next write.
        outbox._db.executescript(
            """
            PRAGMA foreign_keys = ON;
            CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY);
            CREATE TEMP TABLE child (p REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
            CREATE TEMP TRIGGER broken AFTER INSERT ON main.events_outbox
            WHEN NEW.id = 'id-1' BEGIN INSERT INTO child VALUES (1); END;
            """
        )
        with pytest.raises(sqlite3.IntegrityError):
            outbox.record(_event(1), ["sink"])
        assert not outbox._db.in_transaction
        other = sqlite3.connect(tmp_path / "meta.db", timeout=0.1)
        other.execute("BEGIN IMMEDIATE")  # the write lock was let go
        other.execute("ROLLBACK")
        other.close()
        outbox.record(_event(2), ["sink"])
        assert outbox.figures()["sink"].queued == 1  # the second only: the first was undone
    finally:
        outbox.close()
