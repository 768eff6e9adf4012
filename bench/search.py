"""Search figures on a large registry: GlobalSearch and ImageList through HTTP.

Writes ``--repos`` x ``--tags`` images (as bench/meta.py does), starts ``ocireg serve`` on them
with the search extension, waits until the meta DB is built, then times GraphQL queries one at a
time (the server's answer time as a client sees it, on loopback). Targets (issue 5), 10,000
repositories x 10 tags: GlobalSearch p50 under 50 ms, ImageList of one repository under 20 ms.

    BENCH_TMPDIR=/dev/shm python bench/search.py --repos 10000 --tags 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from meta import populate

QUERIES = {
    "GlobalSearch app12 (page of 10)": (
        '{ GlobalSearch(query: "app12", requestedPage: {limit: 10, offset: 0}) '
        "{ Page { TotalCount } Repos { Name NewestImage { Tag Digest } } } }"
    ),
    "GlobalSearch team7/ (page of 10, by update time)": (
        '{ GlobalSearch(query: "team7/", requestedPage: {limit: 10, offset: 0, '
        "sortBy: UPDATE_TIME}) { Page { TotalCount } Repos { Name } } }"
    ),
    "GlobalSearch by vendor annotation": (
        '{ GlobalSearch(query: "v4242", requestedPage: {limit: 10, offset: 0}) '
        "{ Page { TotalCount } Repos { Name } } }"
    ),
    "ImageList of one repository": (
        '{ ImageList(repo: "team3/app1203") { Page { TotalCount } Results { Tag Digest '
        "Manifests { Platform { Os Arch } Layers { Digest } } } } }"
    ),
    "ExpandedRepoInfo": (
        '{ ExpandedRepoInfo(repo: "team3/app1203") { Summary { Name Platforms { Os Arch } } '
        "Images { Tag } } }"
    ),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_sync(log: Path, url: str, deadline: float) -> float:
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if '"meta sync done"' in line:
                return float(json.loads(line)["seconds"])
        time.sleep(0.2)
    raise SystemExit(f"no meta sync in time:\n{log.read_text()[-2000:]}")


@contextmanager
def search_server(
    prefix: str,
    fill: Callable[[Path], None],
    search: dict[str, Any],
    extensions: dict[str, Any] | None = None,
    root: Path | None = None,
    http: Callable[[Path], dict[str, Any]] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """``ocireg serve`` on a fresh root that ``fill`` writes (or on ``root``, filled before and
    kept), with ``extensions.search`` set to ``search`` (and other ``extensions``), once its
    meta DB is synced: (its URL, its process, the sync's seconds). ``http``: more of the
    ``http`` section, made in the benchmark's directory (``http.auth``, say)."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("BENCH_TMPDIR")))
    port = free_port()
    try:
        if root is None:
            root = base / "root"
            fill(root)
        config = base / "config.json"
        config.write_text(json.dumps({
            # no GC, and no dedupe conversion of the freshly written root running meanwhile
            "storage": {"rootDirectory": str(root), "gc": False, "dedupe": False},
            "http": {"address": "127.0.0.1", "port": port, **(http(base) if http else {})},
            "log": {"level": "info"},
            "extensions": {"search": search, **(extensions or {})},
        }))  # fmt: skip
        log = base / "server.log"
        with open(log, "wb") as out:
            server = subprocess.Popen([sys.executable, "-m", "ocireg", "serve", str(config)],
                                      stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            yield url, server, wait_for_sync(log, url, time.monotonic() + 600)
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--settle", type=float, default=0.0, help="seconds to wait after start")
    args = parser.parse_args()
    with search_server(
        "ocireg-search-", lambda root: populate(root, args.repos, args.tags), {}
    ) as (url, _, sync):
        print(f"{args.repos} repositories x {args.tags} tags; meta DB built in {sync:.1f} s")
        time.sleep(args.settle)  # let start-up work (dedupe's check of every blob) finish
        with httpx.Client(base_url=url, timeout=120) as client:
            started = time.perf_counter()
            client.post("/v2/_zot/ext/search", json={"query": QUERIES[next(iter(QUERIES))]})
            print(f"first search (facts of every repository): "
                  f"{(time.perf_counter() - started) * 1000:.0f} ms")  # fmt: skip
            for name, query in QUERIES.items():
                times = []
                for _ in range(args.runs):
                    started = time.perf_counter()
                    response = client.post("/v2/_zot/ext/search", json={"query": query})
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200 and "errors" not in response.json()
                times.sort()
                p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
                print(f"{name}: p50 {statistics.median(times):.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
