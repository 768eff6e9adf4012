"""The last GC, scrub and sync rounds and their results, kept for the operations page.

Nothing else records a round's outcome (the log says it line by line, metrics count it), so
the UI keeps a short history in the meta DB: a scheduler round listener writes one row per
round of the jobs it knows, in whichever worker process ran the round, and every process reads
them. A round's ``result`` is the sum of what its tasks returned: bytes freed (GC), images that
failed their check (scrub), tags copied (sync), bytes a GC would free (the estimate).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ocireg.meta.db import MetaDB
from ocireg.registry.offloop import database_work_soon
from ocireg.scheduler import RoundDone

log = logging.getLogger("ocireg.ui")

KEEP = 20  # rounds kept per job
ESTIMATE = "gc-estimate"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ui_runs (
    job TEXT NOT NULL, started REAL NOT NULL, seconds REAL NOT NULL,
    tasks INTEGER NOT NULL, failed INTEGER NOT NULL, result INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ui_runs_by_job ON ui_runs (job, started);
"""


def kind_of(job: str) -> str | None:
    """What a scheduler job is, for the page: "gc", "scrub", "sync", or None (not kept)."""
    if job == "gc" or job.startswith("gc:"):
        return "gc"
    if job == "scrub":
        return "scrub"
    if job.startswith("sync-") and not job.endswith("-resume"):
        return "sync"
    if job == ESTIMATE:
        return ESTIMATE
    return None


@dataclass(frozen=True)
class Run:
    job: str
    started: float
    seconds: float
    tasks: int
    failed: int
    result: int

    @property
    def kind(self) -> str:
        return kind_of(self.job) or self.job

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not (self.kind == "scrub" and self.result)


class RunLog:
    def __init__(self, meta: MetaDB) -> None:
        self.meta = meta
        with meta.extension_write() as connection:
            connection.executescript(_SCHEMA)

    def round_done(self, done: RoundDone) -> None:
        """A scheduler round listener, called on the event loop: keep the rounds of the jobs
        the page shows. Written here on the local SQLite file; on a database thread, not
        awaited, when the meta DB is across the network (PostgreSQL), so that a slow or
        silent database server holds up no request."""
        if kind_of(done.job) is None:
            return
        counted = sum(r for r in done.results if isinstance(r, int) and not isinstance(r, bool))
        run = Run(done.job, done.started, done.seconds, len(done.results), done.failed, counted)
        if not self.meta.shared_by_instances:
            self.add(run)
            return
        database_work_soon(self.add, run)  # (a failure is logged; the page misses a round)

    def add(self, run: Run) -> None:
        with self.meta.extension_write() as connection:
            connection.execute(
                "INSERT INTO ui_runs (job, started, seconds, tasks, failed, result) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (run.job, run.started, run.seconds, run.tasks, run.failed, run.result),
            )
            connection.execute(
                "DELETE FROM ui_runs WHERE job = ? AND started < (SELECT MIN(started) FROM "
                "(SELECT started FROM ui_runs WHERE job = ? ORDER BY started DESC LIMIT ?))",
                (run.job, run.job, KEEP),
            )

    def recent(self, limit: int = 12) -> list[Run]:
        """The latest rounds of every job, newest first."""
        rows = self.meta.extension_read(
            "SELECT job, started, seconds, tasks, failed, result FROM ui_runs "
            "ORDER BY started DESC LIMIT ?",
            limit,
        )
        return [Run(*row) for row in rows]

    def last(self, kind: str) -> Run | None:
        """The latest round of a kind of job (any root's GC, any upstream's sync)."""
        for run in self.recent(limit=200):
            if run.kind == kind:
                return run
        return None


def timed(job: str, started: float, tasks: int, failed: int, result: int) -> Run:
    return Run(job, started, time.time() - started, tasks, failed, result)
