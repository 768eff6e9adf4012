"""Hostile neighbour, all at once: manifest GET latency while every abuse of issue 21 runs.

One ``ocireg serve`` (one worker, search and metrics on, default limits) on a root holding
``--repos`` images of ``--layers`` layers (issue 21's search case) and one small image. After a
quiet phase, for ``--seconds``, at the same time:

- ``--searchers`` clients (one by default, as for every abuse: ``hostile_search.py`` has ten
  alone) each send the worst search query the default limits allow
  (:data:`hostile_search.WORST`), in a loop;
- ``--sprayers`` clients each GET manifests of repositories that do not exist, every name new
  (metrics-label spraying), while another scrapes ``/metrics`` every second;
- one client from another address (127.0.0.2) keeps ``--connections`` connections open, half
  idle and half slow-header (:class:`hostile_connections.Hoarder`);
- one client pushes manifests just under the 4 MiB limit (about 27,000 layers each), one
  after another.

Meanwhile a separate process (so the abusers' threads do not delay its own timing) GETs the
small image's manifest every 10 ms and times each GET. Reported: GET p50/p99/max quiet and
loaded, what each abuse achieved, and the peak RSS of the server's process tree (worker and
search process). Targets (issue 21): loaded GET p99 < 50 ms, RSS < 300 MiB throughout.

    BENCH_TMPDIR=/dev/shm python bench/hostile_neighbour.py
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_connections import Hoarder
from hostile_input import large_manifest
from hostile_search import OCI_MANIFEST, hostile, measure_gets, populate, report
from procstat import RssSampler
from search import search_server


def _measured(url: str, seconds: float) -> list[float]:
    """measure_gets in a process of its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure_gets, (url, seconds))


def _loop(stop: threading.Event, step: Callable[[httpx.Client], None], url: str) -> None:
    with httpx.Client(base_url=url, timeout=300) as client:
        while not stop.is_set():
            step(client)


class Abuses:
    """Every abuse, each in its own threads, counting what it got."""

    def __init__(self, url: str, port: int, args: argparse.Namespace) -> None:
        self.stop = threading.Event()
        self.seen: Counter[str] = Counter()
        self.searches: Counter[str] = Counter()
        self.hoarder = Hoarder(port, args.connections, 200.0)
        self._sprayed = iter(range(10**9))
        self._pushed = iter(range(10**9))
        self.hoarding = "connections" not in args.without
        searchers = 0 if "search" in args.without else args.searchers
        self._threads = [threading.Thread(target=hostile, args=(url, self.stop, self.searches))
                         for _ in range(searchers)]  # fmt: skip
        steps = [] if "spray" in args.without else [self._spray] * args.sprayers + [self._scrape]
        steps += [] if "pushes" in args.without else [self._push]
        self._threads += [threading.Thread(target=_loop, args=(self.stop, step, url))
                          for step in steps]  # fmt: skip
        with httpx.Client(base_url=url, timeout=60) as client:
            data = b"{}"
            response = client.post("/v2/abuse/big/blobs/uploads/", content=data,
                                   params={"digest": _digest(data)})  # fmt: skip
            assert response.status_code == 201, response.text
        self._manifest = partial(large_manifest, {"digest": _digest(data), "size": len(data)})

    def _spray(self, client: httpx.Client) -> None:
        client.get(f"/v2/spray/r{next(self._sprayed)}/manifests/latest")
        self.seen["spray GETs"] += 1

    def _scrape(self, client: httpx.Client) -> None:
        response = client.get("/metrics")
        self.seen["scrapes"] += 1
        self.seen["last scrape KiB"] = len(response.content) // 1024
        self.stop.wait(1)

    def _push(self, client: httpx.Client) -> None:
        n = next(self._pushed)
        response = client.put(f"/v2/abuse/big/manifests/t{n}", content=self._manifest(n),
                              headers={"Content-Type": OCI_MANIFEST})  # fmt: skip
        self.seen[f"4 MiB pushes answered {response.status_code}"] += 1

    def __enter__(self) -> Abuses:
        if self.hoarding:
            self.hoarder.start()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.hoarder.stop.set()
        for thread in [*self._threads, *([self.hoarder] if self.hoarding else [])]:
            thread.join()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=25)
    parser.add_argument("--layers", type=int, default=28_000)
    parser.add_argument("--searchers", type=int, default=1)
    parser.add_argument("--sprayers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--without", action="append", default=[],
                        choices=["search", "spray", "connections", "pushes"],
                        help="leave an abuse out (to find which one costs what)")  # fmt: skip
    args = parser.parse_args()
    fill = partial(populate, repos=args.repos, layers=args.layers)
    extensions = {"metrics": {}}
    with search_server("ocireg-neighbour-", fill, {}, extensions) as (url, server, sync):
        print(f"{args.repos} images of {args.layers} layers; meta DB built in {sync:.1f} s")
        port = int(url.rsplit(":", 1)[1])
        with RssSampler(server.pid) as rss:
            report("quiet", _measured(url, args.seconds / 3))
            with Abuses(url, port, args) as abuses:
                time.sleep(2)  # every abuse under way
                report("with every abuse at once", _measured(url, args.seconds))
        print(f"search: {dict(abuses.searches)}")
        print(f"others: {dict(abuses.seen)}")
        print(f"connections: held at most {abuses.hoarder.held_peak}; {dict(abuses.hoarder.seen)}")
        print(f"server peak RSS (worker and search process): {rss.peak_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
