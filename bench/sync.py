"""Sync figures (issue 15), side by side in one run, against Debian's docker-registry upstream:

* on-demand first pull of a large image through an ocireg mirror vs the same pull straight from
  the upstream (target: at most 1.3x);
* the second pull through the mirror (now local) vs the direct pull;
* the mirror's peak RSS while it streams a huge blob through (target: < 150 MiB);
* a periodic round over many small images: images per second.

A pull is what a client does: GET the manifest, then GET every blob, streamed and discarded.
Each of the first three pulls also reports the CPU seconds the upstream, the mirror and this
client spent on it: on a shared machine the steadier figure.

    python bench/sync.py                       # 256 MiB image, 2 GiB blob, 500 small images
    python bench/sync.py --big-mib 64 --huge-mib 256 --small 50   # a quick run
    SYNC_MIRROR_SCRIPT=bench/profile_mirror.py SYNC_PROFILE=/tmp/mirror.prof \
        python bench/sync.py --on-demand-only    # the mirror's first pull under cProfile
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procstat import RssSampler, cpu_seconds, now
from servers import Server, _process, _workdir, docker_registry, free_port, ocireg_config
from workload import (
    CONFIG_BLOB,
    MiB,
    PatternBlob,
    descriptor,
    expect,
    image_manifest,
    pool,
    push_blob,
    push_image_base,
    put_manifest,
    sha256,
)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = "application/vnd.oci.image.manifest.v1+json"


@contextmanager
def mirror(upstream: str, **registry: Any) -> Iterator[tuple[Server, Path]]:
    with _workdir("bench-sync-") as workdir:
        port = free_port()
        config = ocireg_config(workdir / "root", port)
        config["log"] = {"level": "info"}
        entry = {"urls": [upstream], "tlsVerify": False, **registry}
        config["extensions"] = {"sync": {"registries": [entry]}}
        (workdir / "config.json").write_text(json.dumps(config))
        argv = [sys.executable, "-m", "ocireg", "serve", str(workdir / "config.json")]
        if os.environ.get("SYNC_MIRROR_SCRIPT"):  # e.g. one serving under a profiler
            script = str(Path(os.environ["SYNC_MIRROR_SCRIPT"]).resolve())
            argv = [sys.executable, script, str(workdir / "config.json")]
        with _process("ocireg-mirror", argv, workdir, port) as server:
            yield server, workdir / "server.log"


async def push_big(client: httpx.AsyncClient, repo: str, size: int) -> None:
    blob = PatternBlob.make(size)
    await push_blob(client, repo, blob.digest, blob.stream(), size)
    await push_blob(client, repo, sha256(CONFIG_BLOB), CONFIG_BLOB, len(CONFIG_BLOB))
    layer = {"mediaType": OCI_LAYER, "digest": blob.digest, "size": size}
    await put_manifest(
        client, repo, "v1", image_manifest(descriptor(OCI_CONFIG, CONFIG_BLOB), [layer])
    )


async def pull(url: str, repo: str) -> float:
    """Seconds to pull ``repo:v1`` from ``url``: the manifest, then its blobs in turn."""
    started = now()
    await _pull(url, repo)
    return now() - started


async def measured(url: str, repo: str, servers: dict[str, int | None]) -> dict[str, float]:
    """A pull's seconds, and the CPU seconds each server (and this client) spent on it: on a
    shared machine CPU is the steadier figure."""
    pids = {name: pid for name, pid in servers.items() if pid is not None}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    client = os.times()
    seconds = await pull(url, repo)
    after = os.times()
    found = {"s": round(seconds, 3)}
    found |= {
        f"{name}_cpu_s": round(cpu_seconds(pid) - before[name], 2) for name, pid in pids.items()
    }
    found["client_cpu_s"] = round(after.user + after.system - client.user - client.system, 2)
    return found


async def _pull(url: str, repo: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        answer = expect(
            await client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": ACCEPT}), 200
        )
        manifest = answer.json()
        for blob in [manifest["config"], *manifest["layers"]]:
            received = 0
            async with client.stream("GET", f"/v2/{repo}/blobs/{blob['digest']}") as response:
                expect(response, 200)
                async for piece in response.aiter_raw():
                    received += len(piece)
            assert received == blob["size"], (blob, received)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with docker_registry() as upstream:
        async with httpx.AsyncClient(base_url=upstream.url, timeout=600) as client:
            await push_big(client, "bench/big", args.big_mib * MiB)
            if args.on_demand_only:
                args.small = 0
            else:
                await push_big(client, "bench/huge", args.huge_mib * MiB)
            base = await push_image_base(client, "small/base")

            async def small(n: int) -> None:
                repo = f"small/img{n}"
                for data in (CONFIG_BLOB, b"layer %d" % n):
                    await push_blob(client, repo, sha256(data), data, len(data))
                layer = descriptor(OCI_LAYER, b"layer %d" % n)
                await put_manifest(client, repo, "v1", image_manifest(base.config, [layer]))

            await pool(8, range(args.small), small)

        direct = await measured(upstream.url, "bench/big", {"upstream": upstream.pid})
        with mirror(upstream.url, onDemand=True) as (server, _):
            pids = {"upstream": upstream.pid, "mirror": server.pid}
            first = await measured(server.url, "bench/big", pids)
            if os.environ.get("SYNC_PROFILE") and server.pid is not None:
                os.kill(server.pid, signal.SIGUSR1)  # bench/profile_mirror.py: dump the stats
            await asyncio.sleep(1)  # the background copy commits the manifest
            second = await measured(server.url, "bench/big", pids)
            assert server.pid is not None
            if not args.on_demand_only:
                with RssSampler(server.pid, 0.05) as sampler:
                    huge = await pull(server.url, "bench/huge")
        results["on_demand"] = {
            "image_mib": args.big_mib,
            "direct": direct,
            "first_pull": first,
            "first_over_direct": round(first["s"] / direct["s"], 2),
            "second_pull": second,
            "second_over_direct": round(second["s"] / direct["s"], 2),
        }
        if args.on_demand_only:
            return results
        results["huge_blob"] = {
            "blob_mib": args.huge_mib,
            "pull_s": round(huge, 2),
            "peak_rss_mib": round(sampler.peak_kib / 1024, 1),
        }
        rules = [{"prefix": "/small/img*"}]
        started = now()
        with mirror(upstream.url, content=rules, pollInterval="1h") as (server, log):
            while True:
                lines = [
                    json.loads(line)
                    for line in log.read_text().splitlines()
                    if line.startswith("{")
                ]
                stored = sum(1 for line in lines if line.get("msg") == "sync image stored")
                if stored >= args.small:
                    break
                await asyncio.sleep(0.2)
            seconds = now() - started
        results["periodic"] = {
            "images": args.small,
            "seconds_incl_start": round(seconds, 2),
            "images_per_s": round(args.small / seconds, 1),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mib", type=int, default=256)
    parser.add_argument("--huge-mib", type=int, default=2048)
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--on-demand-only", action="store_true", help="the first three pulls")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
