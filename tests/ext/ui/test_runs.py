"""The operations page's round history: a finished round is written where the meta DB is, and
on a PostgreSQL meta DB off the event loop (the scheduler calls its listeners there)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ocireg.ext.ui.runs import RunLog
from ocireg.meta.db import Connection, SQLiteMetaDB
from ocireg.scheduler import RoundDone


class _SlowSharedMeta(SQLiteMetaDB):
    """A meta DB that says instances share it, and whose writes wait for ``answer``: a
    database server that has gone silent until the test lets it answer."""

    shared_by_instances = True

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.answer = threading.Event()
        self.answer.set()  # (the schema is written at once)

    @contextmanager
    def extension_write(self) -> Iterator[Connection]:
        assert self.answer.wait(30)
        with super().extension_write() as connection:
            yield connection


def test_a_round_is_kept_for_the_page(tmp_path: Path) -> None:
    runs = RunLog(SQLiteMetaDB(tmp_path / "meta.db"))
    runs.round_done(RoundDone("gc", 1000.0, 2.5, (10, 20)))
    runs.round_done(RoundDone("meta-flush", 1001.0, 0.1, (1,)))  # not a job the page shows
    [kept] = runs.recent()
    assert (kept.job, kept.kind, kept.tasks, kept.result, kept.failed) == ("gc", "gc", 2, 30, 0)


def test_a_shared_meta_db_is_written_without_holding_the_caller(tmp_path: Path) -> None:
    meta = _SlowSharedMeta(tmp_path / "meta.db")
    runs = RunLog(meta)
    meta.answer.clear()
    started = time.monotonic()
    runs.round_done(RoundDone("scrub", 1000.0, 1.0, (0,)))
    assert time.monotonic() - started < 1, "the listener waited for the database"
    meta.answer.set()
    deadline = time.monotonic() + 10
    while not runs.recent():
        assert time.monotonic() < deadline, "the round was never written"
        time.sleep(0.02)
    assert runs.recent()[0].job == "scrub"
