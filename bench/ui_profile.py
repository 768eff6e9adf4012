"""Where a web UI page's search time goes: each page's GraphQL queries, run in this process
against a meta DB (as the search process runs them), under cProfile.

    python bench/ui_profile.py ROOT [--repos 10000 --tags 10] [--runs 20] [--only home] [--profile]

ROOT is a storage root; when it has no meta DB (``<ROOT>/.ocireg/meta.db``) it is filled as
bench/meta.py fills one (``--repos`` x ``--tags``) and its meta DB built, which takes minutes
at 10,000 repositories: keep ROOT for the next run. Prints each page's CPU time per run of its
queries (the median and the worst run, with what the first run costs apart: it builds the
caches kept per meta DB generation), and with ``--profile`` the hottest functions.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ocireg.ext.search.execution import Executor, SearchSchema
from ocireg.ext.search.facts import FactsCache
from ocireg.ext.search.schema import Search, build_schema
from ocireg.ext.search.settings import SearchLimits
from ocireg.ext.ui import queries
from ocireg.meta.db import SQLiteMetaDB
from ocireg.meta.sync import sync_all
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.store import Registry
from ocireg.storage.filesystem import FilesystemDriver


def page_queries(repo: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Each page's queries, with the variables the page sends (``ocireg.ext.ui.pages``)."""
    image = f"{repo}:v1"

    def explore(sort: str, page: int = 1, q: str = "", **wanted: Any) -> list[Any]:
        asked = {"limit": 20, "offset": (page - 1) * 20, "sortBy": sort}
        return [(queries.GLOBAL_SEARCH, {"q": q, "filter": wanted or None, "page": asked})]

    return {
        "home": [
            (
                queries.HOME,
                {
                    "page": {"limit": 6},
                    "recent": {"limit": 6, "sortBy": "UPDATE_TIME"},
                    "popular": {"limit": 6, "sortBy": "DOWNLOADS"},
                    "mine": False,
                },
            )
        ],
        "explore": explore("RELEVANCE"),
        "explore by update time": explore("UPDATE_TIME"),
        "explore by update time, page 50": explore("UPDATE_TIME", 50),
        "explore by downloads": explore("DOWNLOADS"),
        "explore by stars": explore("STARS"),
        "explore by name": explore("ALPHABETIC_ASC"),
        "explore by name, descending": explore("ALPHABETIC_DSC"),
        "explore app12": explore("RELEVANCE", q="app12"),
        "explore linux": explore("RELEVANCE", Os=["linux"]),
        "explore arm64 (none)": explore("RELEVANCE", Arch=["arm64"]),
        "explore signed (none)": explore("RELEVANCE", HasToBeSigned=True),
        "suggest app12": [(queries.GLOBAL_SEARCH, {"q": "app12", "page": {"limit": 8}})],
        "repository": [(queries.REPO, {"repo": repo})],
        "image": [(queries.IMAGE, {"image": image})],
        "vulnerabilities": [(queries.VULNERABILITY_COUNTS, {"image": image})],
        "related": [(queries.RELATED, {"image": image, "page": {"limit": 100}})],
    }


def build(root: Path, repos: int, tags: int) -> None:
    from meta import populate

    started = time.perf_counter()
    populate(root, repos, tags)
    (root / ".ocireg").mkdir(exist_ok=True)
    db = SQLiteMetaDB(root / ".ocireg" / "meta.db")
    sync_all(Registry(FilesystemDriver(root), KeyedLocks(None)), db)
    db.close()
    seconds = time.perf_counter() - started
    print(f"{repos} x {tags} written and read into the meta DB in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", default=None, help="run only this page")
    parser.add_argument("--profile", action="store_true", help="under cProfile (slower)")
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=10)
    args = parser.parse_args()
    path = args.root / ".ocireg" / "meta.db"
    if not path.exists():
        build(args.root, args.repos, args.tags)
    SQLiteMetaDB(path).close()  # as the registry's worker opens it first: it migrates
    db = SQLiteMetaDB.reader(path)
    facts = FactsCache(db)
    executor = Executor(build_schema(SearchSchema), SearchLimits())
    started = time.process_time()
    facts.current()
    print(f"facts of every repository: {(time.process_time() - started) * 1000:.0f} ms CPU")
    repo = facts.repositories()[len(facts.repositories()) // 2]
    profiler = cProfile.Profile()
    for name, asked in page_queries(repo).items():
        if args.only and name != args.only:
            continue
        times = []
        for _ in range(args.runs):
            started = time.process_time()
            if args.profile:
                profiler.enable()
            for query, variables in asked:
                search = Search(db, facts, "", list)
                body = executor.answer(query, variables, None, search)
                assert b'"errors"' not in body, body[:300]
            profiler.disable()
            times.append((time.process_time() - started) * 1000)
        first = times[0]
        times.sort()
        print(f"{name}: CPU p50 {times[len(times) // 2]:.1f} ms, max {times[-1]:.1f} ms, "
              f"first {first:.1f} ms")  # fmt: skip
    if args.profile:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
