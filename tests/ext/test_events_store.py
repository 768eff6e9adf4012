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


def test_a_try_at_a_group_writes_it_when_the_lock_is_free(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "meta.db")
    try:
        written = outbox.try_intend_groups([[(_event(1), ["sink"], "{}")]], "me")
        assert written is not None and len(written[0]) == 1
        assert [intent.seq for intent in outbox.intents()] == written[0]
        assert outbox.figures()["sink"].queued == 1
    finally:
        outbox.close()


def test_a_try_at_a_group_waits_for_no_lock_and_writes_nothing(tmp_path: Path) -> None:
    """Another writer (a worker process, the sender) holds SQLite's write lock: the try gives
    up at once (its caller, the event loop, hands the group to the writer thread)."""
    outbox = Outbox(tmp_path / "meta.db")
    other = sqlite3.connect(tmp_path / "meta.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        assert outbox.try_intend_groups([[(_event(1), ["sink"], "{}")]], "me") is None
        other.execute("ROLLBACK")
        assert outbox.intents() == [] and outbox.figures() == {}
        assert outbox.try_intend_groups([[(_event(2), ["sink"], "{}")]], "me") is not None
    finally:
        other.close()
        outbox.close()


@pytest.mark.parametrize("where", ["memory", "durable"])
def test_a_try_at_a_group_is_never_made_in_memory_nor_durably(tmp_path: Path, where: str) -> None:
    """In memory, a second connection would be another database; a durable intent's commit
    waits for the disk, which the event loop must not."""
    outbox = Outbox(None) if where == "memory" else Outbox(tmp_path / "meta.db", durable=True)
    try:
        assert outbox.try_intend_groups([[(_event(1), ["sink"], "{}")]], "me") is None
        assert outbox.intents() == []
    finally:
        outbox.close()


def test_the_tries_alone_keep_the_write_ahead_log_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no other connection committing (every sink down, a meta DB on PostgreSQL), the
    connection of the tries copies the WAL into the database past its own threshold."""
    from ocireg.ext.events import store

    monkeypatch.setattr(store, "QUICK_CHECKPOINT_PAGES", 50)
    outbox = Outbox(tmp_path / "meta.db")
    try:
        for number in range(400):
            assert outbox.try_intend_groups([[(_event(number), ["s"], "{}")]], "me") is not None
        wal = (tmp_path / "meta.db-wal").stat().st_size
        assert wal < 120 * 4096 + 32  # 400 intents write ~2,400 pages; restarted past 50
    finally:
        outbox.close()


def test_a_try_with_nothing_to_write_takes_no_lock(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "meta.db")
    other = sqlite3.connect(tmp_path / "meta.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        assert outbox.try_intend_groups([[(_event(1), [], "{}")]], "me") == [[]]  # no sink
        other.execute("ROLLBACK")
    finally:
        other.close()
        outbox.close()


def test_a_closed_outbox_tries_nothing(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "meta.db")
    assert outbox.try_intend_groups([[(_event(1), ["s"], "{}")]], "me") is not None
    outbox.close()
    assert outbox.try_intend_groups([[(_event(2), ["s"], "{}")]], "me") is None
    assert outbox._quick is None  # not opened again
