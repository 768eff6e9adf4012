"""Client-report figure (issue 20): manifest GET throughput with ``--client-report`` on against
off. One image is pushed, then ``--gets`` GETs of its manifest by tag (with ``Accept``, so no
departure is recorded: the cost measured is the watching) from ``--clients`` concurrent
connections in one client process; the two registries alternate ``--rounds`` times and the
medians are reported. Target: on >= 0.8x off.

    python bench/clientreport.py --gets 4000 --clients 16 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import loadgen
from servers import _process, _workdir, free_port, ocireg_config
from workload import push_image_base, put_manifest

REPO = "bench/clientreport"


@contextmanager
def registry(report: bool) -> Iterator[str]:
    with _workdir("bench-clientreport-") as workdir:
        port = free_port()
        (workdir / "config.json").write_text(json.dumps(ocireg_config(workdir / "root", port)))
        argv = [sys.executable, "-m", "ocireg", "serve", str(workdir / "config.json")]
        argv += ["--client-report"] if report else []
        with _process("ocireg", argv, workdir, port) as server:
            yield server.url


async def _seed(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        base = await push_image_base(client, REPO)
        await put_manifest(client, REPO, "v1", base.manifest(0))


def gets_per_second(report: bool, gets: int, clients: int) -> float:
    with registry(report) as url:
        asyncio.run(_seed(url))
        load = loadgen.run(url, "GET", [f"/v2/{REPO}/manifests/v1"] * gets, clients, 1)
        if report:  # the report did watch: the bench client is in it, with no departure
            answer = httpx.get(url + "/v2/_ocireg/clients/report", timeout=60).json()
            watched = {c["userAgent"]: c for c in answer["clients"]}
            agent = next(a for a in watched if a.startswith("python-httpx/"))
            assert watched[agent]["requests"] >= gets, watched[agent]
            assert watched[agent]["departures"] == [], watched[agent]
        return gets / load.wall


def judge_microseconds(count: int = 20_000) -> float:
    """CPU cost of judging one manifest GET (what the watcher adds to each request), from the
    watcher's own code, without a server: less noisy than throughput on a loaded machine."""
    from ocireg.ext.clientreport.book import Book
    from ocireg.ext.clientreport.watcher import ClientReportMiddleware

    async def nothing(*_: object) -> None:
        return None

    watcher = ClientReportMiddleware(nothing, Book(100))
    scope = {
        "type": "http",
        "method": "GET",
        "path": f"/v2/{REPO}/manifests/v1",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:5000"),
            (b"user-agent", b"python-httpx/0.28.1"),
            (b"accept", b"application/vnd.oci.image.manifest.v1+json"),
        ],
    }
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/vnd.oci.image.manifest.v1+json"),
            (b"content-length", b"500"),
            (b"docker-content-digest", b"sha256:" + b"0" * 64),
        ],
    }
    began = time.process_time()
    for _ in range(count):
        watcher._judge(scope, start, 0.0)
    return (time.process_time() - began) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gets", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.rounds):
        for name in ("off", "on"):
            runs[name].append(gets_per_second(name == "on", args.gets, args.clients))
            print(f"{name}: {runs[name][-1]:.0f} GET/s", file=sys.stderr)
    off, on = statistics.median(runs["off"]), statistics.median(runs["on"])
    result = {
        "gets": args.gets,
        "clients": args.clients,
        "rounds": args.rounds,
        "gets_per_second": runs,
        "median_off": round(off, 1),
        "median_on": round(on, 1),
        "ratio": round(on / off, 3),
        "judge_microseconds_per_manifest_get": round(judge_microseconds(), 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
