"""Manifest GET and PUT load from several wrk processes at once, and the per-request costs a
registry pays for them (its CPU, S3 requests, PostgreSQL statements).

A load is a list of clients (wrk connections) each bound to one server: ``spread`` deals them
round-robin over the servers given, and one wrk process per distinct server runs them, all at
once. Every wrk process has one thread, so the client side costs the same whether the
connections go to one server or to three (``spread(n, [a, a, a])`` against
``spread(n, [a, b, c])``).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import wrkload
from procstat import cpu_seconds
from servers import Server
from workload import OCI_MANIFEST, push_image_base, put_manifest

ACCEPT = f"Accept: {OCI_MANIFEST}"
TIMEOUT = 30  # s; wrk's default 2 s turns a loaded S3 endpoint's slow answers into errors


@dataclass
class Slot:
    """One wrk process: ``connections`` clients on ``server``."""

    server: Server
    connections: int


@dataclass
class Load:
    """What one round of concurrent wrk processes measured."""

    runs: list[tuple[Slot, wrkload.WrkRun]]

    @property
    def rate(self) -> float:
        return sum(run.rate for _, run in self.runs)

    def per_server(self) -> dict[str, float]:
        rates: dict[str, float] = {}
        for slot, run in self.runs:
            rates[slot.server.name] = rates.get(slot.server.name, 0.0) + run.rate
        return rates

    def errors(self) -> dict[str, int]:
        """Failed requests by kind: wrk's socket errors (connect, read, write, timeout: no
        answer within TIMEOUT), ``status`` for answers other than 2xx/3xx (or, for PUTs,
        other than 201)."""
        kinds: dict[str, int] = {}
        for _, run in self.runs:
            bad = run.non_2xx + run.counters.get("bad", 0)
            pairs = [("status", bad), *_socket_errors(run.socket_errors)]
            for kind, count in pairs:
                if count:
                    kinds[kind] = kinds.get(kind, 0) + count
        return kinds

    def worst_p99(self) -> float:
        return max(run.p99_ms or 0.0 for _, run in self.runs)

    def median_p50(self) -> float:
        """The median of the wrk processes' p50s (those that completed a request)."""
        found = [run.p50_ms for _, run in self.runs if run.p50_ms is not None and run.requests]
        return statistics.median(found) if found else float("nan")


def error_text(loads: list[Load]) -> str:
    """Failed requests of all ``loads`` by kind, ``none`` when there were none."""
    kinds: dict[str, int] = {}
    for load in loads:
        for kind, count in load.errors().items():
            kinds[kind] = kinds.get(kind, 0) + count
    return ", ".join(f"{kind} {count}" for kind, count in kinds.items()) or "none"


def _socket_errors(text: str) -> list[tuple[str, int]]:
    """wrk's ``connect 0, read 0, write 0, timeout 22`` as pairs."""
    pairs = []
    for part in text.split(","):
        words = part.split()
        if len(words) == 2 and words[1].isdigit():
            pairs.append((words[0], int(words[1])))
    return pairs


def spread(connections: int, servers: list[Server], processes: int) -> list[Slot]:
    """``connections`` clients dealt round-robin to ``processes`` wrk processes, process k on
    ``servers[k % len(servers)]``."""
    counts = [connections // processes + (k < connections % processes) for k in range(processes)]
    return [Slot(servers[k % len(servers)], n) for k, n in enumerate(counts) if n]


def run_load(slots: list[Slot], seconds: int, target: Callable[[Slot], tuple[str, dict]]) -> Load:
    """One wrk process per slot, all at once; ``target(slot)`` gives its path and wrkload.run's
    keyword arguments."""

    def one(slot: Slot) -> tuple[Slot, wrkload.WrkRun]:
        path, options = target(slot)
        url = slot.server.url + path
        return slot, wrkload.run(url, slot.connections, seconds, timeout=TIMEOUT, **options)

    with ThreadPoolExecutor(len(slots)) as pool:
        return Load(list(pool.map(one, slots)))


def get_load(slots: list[Slot], seconds: int, repo: str, tag: str) -> Load:
    path = f"/v2/{repo}/manifests/{tag}"
    return run_load(slots, seconds, lambda _slot: (path, {"headers": [ACCEPT]}))


_PUT_ROUNDS = iter(range(1, 1 << 30))
_PUT_LOCK = threading.Lock()


def put_load(slots: list[Slot], seconds: int, repo: str, body: Path) -> Load:
    """PUTs of ``body`` under a new tag per request (wrk/manifest_put.lua), each wrk process with
    a prefix of its own so that no two requests write the same tag."""

    def target(_slot: Slot) -> tuple[str, dict]:
        with _PUT_LOCK:
            prefix = f"r{next(_PUT_ROUNDS)}-"
        args = [repo, str(body), prefix]
        return "/v2/", {"script": "manifest_put.lua", "script_args": args}

    return run_load(slots, seconds, target)


def prepare(server: Server, repo: str, tag: str, folder: Path) -> Path:
    """Push a config, a layer and a manifest tagged ``tag`` into ``repo``; the manifest's bytes
    in a file (for manifest_put.lua)."""

    async def push() -> bytes:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            base = await push_image_base(client, repo)
            body = base.manifest()
            await put_manifest(client, repo, tag, body)
            return body

    path = folder / f"{server.name}-manifest.json"
    path.write_bytes(asyncio.run(push()))
    return path


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="bench-manifests-"))


@dataclass
class Costs:
    """Per request, over ``count`` sequential requests."""

    count: int
    wall_ms: float  # one request's time, client side (sequential: no queueing)
    cpu_ms: float  # the server's CPU (its process tree), ms per request
    s3_requests: float | None  # requests reaching the S3 endpoint for the server's bucket
    pg_statements: float | None  # statements the server ran in PostgreSQL
    pg_detail: dict[str, float]  # statement kind (first word, or the lock function) -> per request
    endpoint_cpu_ms: float | None  # the S3 endpoint's CPU (moto_server on these cores)


def measure_costs(
    server: Server,
    requests: Callable[[httpx.Client], None],
    count: int,
    s3_count: Callable[[], int] | None = None,
    pg_count: Callable[[], dict[str, int]] | None = None,
    settle: float = 2.0,
    endpoint_pid: int | None = None,
) -> Costs:
    """Run ``requests`` (``count`` sequential requests on one client) and divide the server's
    CPU time and the S3 and PostgreSQL counters' growth by ``count``."""
    assert server.pid is not None
    with httpx.Client(base_url=server.url, timeout=60) as client:
        time.sleep(settle)  # let the server's own background work settle
        s3_before = s3_count() if s3_count else 0
        pg_before = pg_count() if pg_count else {}
        cpu_before = cpu_seconds(server.pid)
        endpoint_before = cpu_seconds(endpoint_pid) if endpoint_pid else 0.0
        started = time.perf_counter()
        requests(client)
        wall = time.perf_counter() - started
        time.sleep(settle)  # what the server does just after answering (a flush) counts too
        cpu = cpu_seconds(server.pid) - cpu_before
        endpoint = cpu_seconds(endpoint_pid) - endpoint_before if endpoint_pid else None
        s3 = (s3_count() - s3_before) / count if s3_count else None
        pg_after = pg_count() if pg_count else {}
    detail = {
        kind: (calls - pg_before.get(kind, 0)) / count
        for kind, calls in pg_after.items()
        if calls != pg_before.get(kind, 0)
    }
    statements = sum(detail.values()) if pg_count else None
    endpoint_ms = None if endpoint is None else endpoint * 1000 / count
    return Costs(
        count, wall * 1000 / count, cpu * 1000 / count, s3, statements, detail, endpoint_ms
    )


def sequential_gets(repo: str, tag: str, count: int) -> Callable[[httpx.Client], None]:
    def run(client: httpx.Client) -> None:
        for _ in range(count):
            answer = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            answer.raise_for_status()

    return run


def sequential_puts(
    repo: str, body: bytes, count: int, prefix: str
) -> Callable[[httpx.Client], None]:
    def run(client: httpx.Client) -> None:
        headers = {"Content-Type": OCI_MANIFEST}
        for n in range(count):
            answer = client.put(f"/v2/{repo}/manifests/{prefix}{n}", content=body, headers=headers)
            answer.raise_for_status()

    return run
