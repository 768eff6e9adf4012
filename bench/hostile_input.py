"""Hostile-input figures (issue 21): what cheap abuse costs everyone else.

Each scenario starts ``ocireg serve`` (one worker) on a fresh root, runs the abuse from one
client while another client times manifest GETs of a small image one after another (the
"neighbour"), and samples the server's RSS throughout.

- ``large-manifests``: ``--pushes`` manifests just under 4 MiB (about 27,000 layer descriptors,
  every one naming one pushed blob, so each is checked), each pushed once. Figures: RSS before
  and after, push time, the neighbour's GET p50/p99/max meanwhile (finding 5).
- ``metrics-labels``: ``--requests`` anonymous GETs of distinct repositories that do not exist,
  then ``--scrapes`` scrapes of ``/metrics``. Figures: the scrape's size and time, repository
  label values exposed, RSS, the neighbour's GET p99 during the spray and the scrapes
  (finding 2).

    python bench/hostile_input.py --scenario large-manifests --scenario metrics-labels
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procstat import RssSampler, rss_kib
from servers import _process, _workdir, free_port, ocireg_config

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MAX_MANIFEST = 4 * 1024 * 1024


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def push_blob(client: httpx.AsyncClient, repo: str, data: bytes) -> dict[str, Any]:
    response = await client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": _digest(data)},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return {"digest": _digest(data), "size": len(data)}


async def small_image(client: httpx.AsyncClient, repo: str) -> None:
    config = await push_blob(client, repo, b'{"architecture":"amd64","os":"linux"}')
    layer = await push_blob(client, repo, b"a small layer")
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": OCI_LAYER, **layer}],
    }
    headers = {"Content-Type": OCI_MANIFEST}
    put = await client.put(
        f"/v2/{repo}/manifests/v1", content=json.dumps(document), headers=headers
    )
    assert put.status_code == 201, put.text


class Neighbour:
    """GETs one small manifest in a loop until stopped; keeps every latency."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=300) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                response = await client.get("/v2/neighbour/app/manifests/v1")
                assert response.status_code == 200
                self.latencies.append(time.perf_counter() - started)
                await asyncio.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (
            f"neighbour GET p50 {statistics.median(ordered) * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {ordered[-1] * 1000:.0f} ms ({len(ordered)} GETs)"
        )


async def with_neighbour(url: str, abuse: Callable[[], Awaitable[None]]) -> Neighbour:
    neighbour = Neighbour(url)
    task = asyncio.create_task(neighbour.run())
    try:
        await abuse()
    finally:
        neighbour.stop()
        await task
    return neighbour


def large_manifest(blob: dict[str, Any], n: int) -> bytes:
    layer = json.dumps({"mediaType": OCI_LAYER, **blob}, separators=(",", ":"))
    count = (MAX_MANIFEST - 1024) // (len(layer) + 1)
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", **blob}
    head = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
         "annotations": {"n": str(n)}},
        separators=(",", ":"),
    )  # fmt: skip
    return (head[:-1] + ',"layers":[' + ",".join([layer] * count) + "]}").encode()


async def large_manifests(url: str, pid: int, pushes: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        blob = await push_blob(client, "abuse/big", b"{}")
        bodies = [large_manifest(blob, n) for n in range(pushes)]
        await asyncio.sleep(2)
        before = rss_kib(pid)
        times: list[float] = []

        async def abuse() -> None:
            for n, body in enumerate(bodies):
                started = time.perf_counter()
                response = await client.put(
                    f"/v2/abuse/big/manifests/t{n}",
                    content=body,
                    headers={"Content-Type": OCI_MANIFEST},
                )
                assert response.status_code == 201, response.text
                times.append(time.perf_counter() - started)

        with RssSampler(pid) as sampler:
            neighbour = await with_neighbour(url, abuse)
            await asyncio.sleep(3)  # the meta DB's flush reads them too
        after = rss_kib(pid)
    print(
        f"large-manifests: {pushes} pushes of {len(bodies[0]) / 2**20:.2f} MiB; "
        f"push p50 {statistics.median(times):.2f} s, max {max(times):.2f} s; "
        f"RSS {before / 1024:.0f} -> {after / 1024:.0f} MiB (peak {sampler.peak_kib / 1024:.0f})"
    )
    print(f"large-manifests: {neighbour.summary()}")


async def metrics_labels(url: str, pid: int, requests: int, scrapes: int) -> None:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        await asyncio.sleep(1)
        before = rss_kib(pid)

        async def spray() -> None:
            queue = iter(range(requests))

            async def one_client() -> None:
                for n in queue:
                    await client.get(f"/v2/spray/r{n}/manifests/latest")

            await asyncio.gather(*(one_client() for _ in range(8)))

        started = time.perf_counter()
        with RssSampler(pid) as sampler:
            sprayed = await with_neighbour(url, spray)
            spray_seconds = time.perf_counter() - started
            scrape_times: list[float] = []
            sizes: list[int] = []

            async def scrape() -> None:
                for _ in range(scrapes):
                    begun = time.perf_counter()
                    response = await client.get("/metrics")
                    assert response.status_code == 200
                    scrape_times.append(time.perf_counter() - begun)
                    sizes.append(len(response.content))

            scraped = await with_neighbour(url, scrape)
        last = (await client.get("/metrics")).text
    repos = {
        line.split('repo="', 1)[1].split('"', 1)[0]
        for line in last.splitlines()
        if 'repo="' in line
    }
    print(
        f"metrics-labels: {requests} anonymous 404s in {spray_seconds:.1f} s; "
        f"RSS {before / 1024:.0f} -> {rss_kib(pid) / 1024:.0f} MiB "
        f"(peak {sampler.peak_kib / 1024:.0f}); /metrics {sizes[-1] / 1024:.0f} KiB, "
        f"{len(repos)} repo label values; scrape p50 "
        f"{statistics.median(scrape_times) * 1000:.0f} ms, max {max(scrape_times) * 1000:.0f} ms"
    )
    print(f"metrics-labels: during the spray, {sprayed.summary()}")
    print(f"metrics-labels: during {scrapes} scrapes, {scraped.summary()}")


async def scenario(name: str, args: argparse.Namespace) -> None:
    with _workdir("bench-hostile-") as workdir:
        port = free_port()
        config = ocireg_config(workdir / "root", port)
        if name == "metrics-labels":
            config["extensions"] = {"metrics": {}}
        path = workdir / "config.json"
        path.write_text(json.dumps(config))
        argv = [sys.executable, "-m", "ocireg", "serve", str(path)]
        with _process("ocireg", argv, workdir, port) as server:
            assert server.pid is not None
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                await small_image(client, "neighbour/app")
            if name == "large-manifests":
                await large_manifests(server.url, server.pid, args.pushes)
            else:
                await metrics_labels(server.url, server.pid, args.requests, args.scrapes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", action="append", choices=["large-manifests", "metrics-labels"]
    )
    parser.add_argument("--pushes", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    for name in args.scenario or ["large-manifests", "metrics-labels"]:
        asyncio.run(scenario(name, args))


if __name__ == "__main__":
    main()
