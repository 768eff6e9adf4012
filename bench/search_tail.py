"""Where a search's tail comes from: bench/search.py's queries run in this process, as the
search process runs them, with every garbage collection timed (issue 13's search tail).

    python bench/search_tail.py [--db META_DB | --repos 10000 --tags 10] [--runs 200]
                                [--heap settled|collected] [--writes N]

``--db``: the meta DB file of a storage root (``<root>/.ocireg/meta.db``), copied first so that
``--writes`` can write. Otherwise a meta DB is written directly (no storage, no sync: seconds)
with the rows bench/search.py's registry has once synced: ``--repos`` x ``--tags`` images named,
labelled and annotated as bench/meta.py writes them.

The first query computes every repository's facts, then the heap is handled as the search
process handles it after a heavy query: ``settled`` (``worker.settle``: collect, give memory
back, freeze what is alive) or ``collected`` (collect and give back only: the search process
before issue 13's change). ``--writes N``: every N queries a download is recorded through a
writer connection, as a pull does, so the next query refreshes that repository's facts and
rebuilds the text index. Per query it prints the CPU (``process_time``) and wall p50/p99/max,
and each generation's collections: how many, their CPU in total and the longest. CPU is the
figure to read on a loaded machine; wall on a quiet one.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import QUERIES

from ocireg.ext.search.execution import Executor, SearchSchema
from ocireg.ext.search.facts import FactsCache
from ocireg.ext.search.schema import Search, build_schema
from ocireg.ext.search.settings import SearchLimits
from ocireg.ext.search.worker import settle
from ocireg.heap import give_back
from ocireg.meta.db import SQLiteMetaDB
from ocireg.meta.records import ImageRecord, Platform


class Collections:
    """CPU seconds of each garbage collection, by generation, while ``active``."""

    def __init__(self) -> None:
        self.active = False
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        elif self.active:
            self.pauses[info["generation"]].append(time.process_time() - self._started)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def copy_db(source: Path, directory: Path) -> Path:
    """A consistent copy (SQLite's backup: the WAL of a running server included)."""
    target = directory / "meta.db"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


def fill(path: Path, repos: int, tags: int) -> None:
    """bench/meta.py's registry as its meta DB holds it once synced."""
    writer = SQLiteMetaDB(path)
    try:
        for r in range(repos):
            records = [
                ImageRecord(
                    digest=f"sha256:{r:032x}{t:032x}",
                    media_type="application/vnd.oci.image.manifest.v1+json",
                    size=600,
                    config_digest=f"sha256:{r:064x}",
                    annotations={"org.opencontainers.image.version": f"{t}"},
                    labels={"org.opencontainers.image.vendor": f"v{r}"},
                    platforms=[Platform("linux", "amd64")],
                    layers=[f"sha256:{r + 1:032x}{t:032x}"],
                    layer_sizes=[12],
                    created="2026-01-01T00:00:00Z",
                    content_size=800,
                    stored_at=1_780_000_000.0 + r * tags + t,
                )
                for t in range(tags)
            ]
            tagged = {f"v{t}": record.digest for t, record in enumerate(records)}
            writer.replace_repository(f"team{r % 100}/app{r}", records, tagged, None, time.time())
    finally:
        writer.close()


def record_download(path: Path, repo: str) -> None:
    """What a pull does to the meta DB: a download counted (its repository's version moves)."""
    writer = SQLiteMetaDB(path)
    try:
        [row] = writer.images(repo)[:1]
        writer.add_pulls({(repo, row["digest"]): (1, time.time())})
    finally:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, help="a meta DB to copy (default: write one)")
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--heap", choices=["settled", "collected"], default="settled")
    parser.add_argument("--writes", type=int, default=0, help="a download every N queries")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="search-tail-", dir="/dev/shm") as tmp:
        if args.db:
            path = copy_db(args.db, Path(tmp))
        else:
            path = Path(tmp) / "meta.db"
            started = time.process_time()
            fill(path, args.repos, args.tags)
            print(f"{args.repos:,} x {args.tags} images written in "
                  f"{time.process_time() - started:.1f} CPU s")  # fmt: skip
        db = SQLiteMetaDB.reader(path)
        facts = FactsCache(db)
        executor = Executor(build_schema(SearchSchema), SearchLimits())
        started = time.process_time()
        first = next(iter(QUERIES.values()))
        executor.answer(first, None, None, Search(db, facts, "", list))
        seconds = time.process_time() - started
        print(f"first search (facts of every repository): {seconds:.1f} CPU s")
        if args.heap == "settled":
            settle()
        else:
            give_back()
        walked = len(gc.get_objects())
        full = []
        for _ in range(5):
            before = time.process_time()
            gc.collect()
            full.append((time.process_time() - before) * 1000)
        print(f"heap: {args.heap}; objects a full collection walks: {walked:,} "
              f"(frozen: {gc.get_freeze_count():,}); one full collection: "
              f"{statistics.median(full):.1f} ms CPU")  # fmt: skip
        collections = Collections()
        done = 0
        for name, query in QUERIES.items():
            cpu, wall = [], []
            collections.pauses = {0: [], 1: [], 2: []}
            collections.active = True
            for _ in range(args.runs):
                done += 1
                if args.writes and done % args.writes == 0:
                    collections.active = False
                    record_download(path, f"team{done % 100}/app{done % 10_000}")
                    collections.active = True
                c, w = time.process_time(), time.perf_counter()
                body = executor.answer(query, None, None, Search(db, facts, "", list))
                cpu.append((time.process_time() - c) * 1000)
                wall.append((time.perf_counter() - w) * 1000)
                assert b'"errors"' not in body, body[:300]
            collections.active = False
            print(f"{name}: CPU p50 {statistics.median(cpu):.1f} / p99 {percentile(cpu, 0.99):.1f}"
                  f" / max {max(cpu):.1f} ms; wall p50 {statistics.median(wall):.1f} / p99 "
                  f"{percentile(wall, 0.99):.1f} / max {max(wall):.1f} ms")  # fmt: skip
            for generation, pauses in collections.pauses.items():
                if pauses:
                    print(f"    gen{generation}: {len(pauses)} collections, "
                          f"{sum(pauses) * 1000:.1f} ms CPU in all, longest "
                          f"{max(pauses) * 1000:.1f} ms")  # fmt: skip
        db.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
