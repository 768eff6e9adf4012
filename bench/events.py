"""Events figures (issue 19): push throughput with two HTTP sinks configured against none, and
the events per second that one delivery worker sends to one HTTP sink.

* push: ``--pushes`` manifest PUTs (distinct manifests, blobs pushed beforehand) from
  ``--clients`` concurrent clients over ``--repos`` repositories, against ocireg without the
  events extension and with two HTTP sinks (two local receivers answering 204 at once);
  alternated ``--rounds`` times, medians reported. Target: with sinks >= 0.9x without.
* delivery: ``--events`` events queued while the receiver is down (pushes into 1 repository,
  then into 16), then the receiver starts and the time until it has them all is measured.
  One repository's events go one at a time (in order); several repositories' go in parallel.

    python bench/events.py --pushes 600 --clients 8 --rounds 3 --events 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from servers import _process, _workdir, free_port, ocireg_config
from workload import pool, push_image_base, put_manifest


class Receiver:
    """Counts POSTs; answers 204 at once."""

    def __init__(self) -> None:
        self.port = free_port()
        self.count = 0
        self.first = self.last = 0.0  # perf_counter of the first and the latest delivery
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as httpx reuses connections

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                with owner._lock:
                    owner.count += 1
                    owner.last = time.perf_counter()
                    owner.first = owner.first or owner.last
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, *_: Any) -> None:
                """A client closing its kept-alive connection is no news."""

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@contextmanager
def registry(sinks: list[str], workdir: Path | None = None) -> Iterator[str]:
    """ocireg with one HTTP sink per URL in ``sinks``, on ``workdir``'s root if given."""
    with _workdir("bench-events-") as fresh:
        workdir = workdir or fresh
        port = free_port()
        config: dict[str, Any] = ocireg_config(workdir / "root", port)
        if sinks:
            config["extensions"] = {
                "events": {"sinks": [{"type": "http", "address": url} for url in sinks]}
            }
        (workdir / "config.json").write_text(json.dumps(config))
        argv = [sys.executable, "-m", "ocireg", "serve", str(workdir / "config.json")]
        with _process("ocireg", argv, workdir, port) as server:
            yield server.url


async def push_many(url: str, repos: int, pushes: int, clients: int) -> float:
    """Pushes per second of ``pushes`` manifest PUTs (blobs pushed first, untimed)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        names = [f"bench/events-{n}" for n in range(repos)]
        bases = {name: await push_image_base(client, name) for name in names}
        work = [(names[n % repos], n) for n in range(pushes)]

        async def push(item: tuple[str, int]) -> None:
            name, number = item
            await put_manifest(client, name, f"t{number}", bases[name].manifest(number))

        started = time.perf_counter()
        await pool(clients, work, push)
        return pushes / (time.perf_counter() - started)


def push_throughput(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"none": [], "two_sinks": [], "two_sinks_down": []}
    down = [f"http://127.0.0.1:{free_port()}/events" for _ in range(2)]  # nobody listens
    receivers = [Receiver(), Receiver()]
    for receiver in receivers:
        receiver.start()
    try:
        for _ in range(args.rounds):
            variants = (
                ("none", []),
                ("two_sinks", [r.url for r in receivers]),
                ("two_sinks_down", down),  # the outbox writes, hardly any delivery work
            )
            for key, sinks in variants:
                with registry(sinks) as url:
                    rate = asyncio.run(push_many(url, args.repos, args.pushes, args.clients))
                    runs[key].append(rate)
    finally:
        for receiver in receivers:
            receiver.stop()
    medians = {key: statistics.median(rates) for key, rates in runs.items()}
    ratios = {key: medians[key] / medians["none"] for key in runs}
    return {"pushes_per_s": runs, "medians": medians, "ratios": ratios}


def delivery_rate(events: int, repos: int) -> float:
    """Events per second from the first delivery to the last, of ``events`` queued while the
    receiver was down; the registry is restarted with every event due at once, so back-off
    from the failed attempts is not what is measured."""
    receiver = Receiver()
    with _workdir("bench-events-delivery-") as workdir:
        with registry([receiver.url], workdir) as url:
            # the first push of each repository also makes repository.created
            asyncio.run(push_many(url, repos, events - repos, 8))
        db = sqlite3.connect(workdir / "root" / ".ocireg" / "meta.db")
        with db:
            db.execute("UPDATE events_pending SET due = 0")
        db.close()
        receiver.start()
        with registry([receiver.url], workdir):
            while receiver.count < events:
                time.sleep(0.005)
    receiver.stop()
    return (events - 1) / (receiver.last - receiver.first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repos", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    results["push"] = push_throughput(args)
    results["delivery_events_per_s"] = {
        "1_repo": delivery_rate(args.events, 1),
        "16_repos": delivery_rate(args.events, 16),
    }
    results["load_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
