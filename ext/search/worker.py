"""The search process: answers the GraphQL queries of one registry worker process.

Started by :class:`.runners.ProcessRunner` as ``python -m ocireg.ext.search.worker``. It reads
frames (:mod:`.frames`) on its stdin: first a :class:`Start`, then one :class:`Query` after
another, and writes one :class:`Reply` per query on its stdout. It ends when its stdin does
(the worker process stopped or died), or when it is killed (a query past its time).

It lowers its own CPU priority before anything else, so that while a query runs the kernel
gives the registry's processes the CPU first; and it reads the meta DB through a connection of
its own that cannot write.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ocireg.heap import give_back
from ocireg.logs import JsonLines

from .frames import read_frame, write_frame

if TYPE_CHECKING:
    from ocireg.auth.identity import Identity
    from ocireg.auth.policy import AccessControl

    from .settings import SearchLimits

FAILED = "the search failed; the registry's log says why"
# a query that took this much CPU built enough to be worth a collection afterwards; CPU, not
# wall time: on a busy machine (this process runs niced) a small query waits that long, and
# a full collection after each would cost more than the query did
HEAVY_SECONDS = 0.25
NICENESS = 10  # a query gets the CPU the registry leaves (weight 110 against 1024 at nice 0)


@dataclass(frozen=True)
class Start:
    db: Path | str  # the meta DB file, or PostgreSQL's URL (ocireg.meta.backends.open_reader)
    access: AccessControl | None  # None: everyone reads everything
    limits: SearchLimits
    log_level: int  # ocireg.search's effective level in the worker process
    cve: bool = False  # CVE scanning is on: its tables are read from ``tables``
    tables: Path | None = None  # the SQLite file of extensions' own tables (MetaDB.path)


@dataclass(frozen=True)
class Query:
    query: str
    variables: dict[str, Any] | None
    operation: str | None
    who: Identity


@dataclass(frozen=True)
class Reply:
    body: bytes  # the GraphQL response document
    logs: list[tuple[str, int, str]] = field(default_factory=list)  # (logger, level, JSON)


class _Kept(logging.Handler):
    """Keeps the lines logged while answering, for the worker process to write to its log."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, record.levelno, self.format(record)))

    def take(self) -> list[tuple[str, int, str]]:
        lines, self.lines = self.lines, []
        return lines


def settle() -> None:
    """Collect, give memory back, then leave what is alive now (modules, the schema, every
    repository's facts and their text index) out of later collections.

    The facts of 10,000 repositories are a few hundred thousand objects. Left in the oldest
    generation, each full collection walked all of them with the query waiting, 20-50 ms, and
    made a search's p99 (issue 13). Frozen, they are still freed by reference counting when
    the cache replaces them; only cycles among them wait for the next settle, which unfreezes
    them first (after the start and after each heavy query)."""
    gc.unfreeze()
    give_back()
    gc.freeze()


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    start = read_frame(requests)
    if not isinstance(start, Start):
        raise SystemExit("the search process expects a Start first")
    from ocireg.meta.backends import open_reader  # the heavy imports, once niced

    from .execution import Executor, SearchSchema
    from .facts import FactsCache
    from .schema import Search, build_schema

    kept = _Kept()
    kept.setFormatter(JsonLines())  # one JSON line each, as the worker process writes its own
    logger = logging.getLogger("ocireg")
    logger.addHandler(kept)
    logger.setLevel(start.log_level)
    logger.propagate = False
    db = open_reader(start.db)
    cve = None
    if start.cve:
        from ..cve.store import CveStore

        assert start.tables is not None  # else the search runs in the worker process
        cve = CveStore.reader(start.tables)
    facts = FactsCache(db)
    executor = Executor(build_schema(SearchSchema), start.limits)
    access = start.access
    settle()
    write_frame(replies, Reply(b"ready"))
    while (query := read_frame(requests)) is not None:
        who = query.who

        def keep(names: list[str], who: Identity = who) -> list[str]:
            if access is None:
                return list(names)
            return list(access.readable(who, names))

        search = Search(db, facts, who.user or "", keep, cve=cve)
        started = time.process_time()
        try:
            body = executor.answer(query.query, query.variables, query.operation, search)
        except Exception as exc:  # a failure of ours: the query's error, and the process goes on
            logging.getLogger("ocireg.search").error("search query failed", exc_info=exc)
            body = json.dumps({"data": None, "errors": [{"message": FAILED}]}).encode()
        write_frame(replies, Reply(body, kept.take()))
        del search, body
        if time.process_time() - started > HEAVY_SECONDS:
            settle()  # graphql's errors hold whole answers in cycles; see ocireg.heap


def main() -> None:
    os.nice(NICENESS)
    # Ctrl-C in a terminal reaches the whole process group: the worker process decides when
    # this one ends (by closing its stdin), so a search does not die half-answered
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot corrupt a frame
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":  # run as a script: the frames name this module's classes by its name
    from ocireg.ext.search import worker

    worker.main()
