"""Requests from several client processes, for when one Python client saturates a core.

Each child opens its connections, reports ready, waits for the start signal, sends its share of
the requests with asyncio concurrency and returns its latencies and CPU seconds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass
from typing import Any

import httpx
from workload import expect, pool


@dataclass
class Load:
    wall: float
    client_cpu: float  # the children while sending
    total_cpu: float  # the children over their whole life, start-up included
    latencies: list[float]


async def _drive(url: str, method: str, paths: list[str], workers: int, sync: Any) -> None:
    ready, go, results, _totals = sync
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        await asyncio.gather(*(client.get("/v2/") for _ in range(workers)))  # warm connections
        ready.put(True)
        await asyncio.to_thread(go.wait)
        cpu0, latencies = time.process_time(), []
        headers = {"Accept": "application/vnd.oci.image.manifest.v1+json"}

        async def one(path: str) -> None:
            start = time.perf_counter()
            response = await client.request(method, path, headers=headers)
            latencies.append(time.perf_counter() - start)
            expect(response, 200)

        await pool(workers, paths, one)
        results.put((latencies, time.process_time() - cpu0))
    # start-up and shutdown CPU is reported by _child once the loop is gone


def _child(url: str, method: str, paths: list[str], workers: int, sync: Any) -> None:
    asyncio.run(_drive(url, method, paths, workers, sync))
    sync[3].put(time.process_time())


def run(url: str, method: str, paths: list[str], workers: int, procs: int) -> Load:
    """``paths`` split over ``procs`` processes of ``workers // procs`` concurrent requests."""
    mp = multiprocessing.get_context("spawn")
    sync = (mp.Queue(), mp.Event(), mp.Queue(), mp.Queue())  # ready, go, results, CPU totals
    children = [
        mp.Process(target=_child, args=(url, method, paths[i::procs], workers // procs, sync))
        for i in range(procs)
    ]
    for child in children:
        child.start()
    for _ in children:
        sync[0].get(timeout=60)
    start = time.perf_counter()
    sync[1].set()
    shares = [sync[2].get(timeout=600) for _ in children]
    wall = time.perf_counter() - start
    total = sum(sync[3].get(timeout=60) for _ in children)
    for child in children:
        child.join()
    latencies = [value for share in shares for value in share[0]]
    return Load(wall, sum(share[1] for share in shares), total, latencies)
