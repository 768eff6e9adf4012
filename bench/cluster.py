"""Cluster mode (issue 18): what proxying to the owner costs, against asking the owner.

Three members on loopback, each with its own root. Measured, direct to the owner and through
another member: a blob GET's throughput, manifest GET latency (sequential), and the proxying
member's peak RSS growth while a blob streams through it both ways. Writes a markdown table
(``--out``) with the machine's load, since this 2-core machine is shared.

    python bench/cluster.py --blob-mib 256 --manifests 300
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from servers import Server, _process, _workdir, free_port, ocireg_config

from ocireg.cluster.hashing import owner_index

KEY = "loremipsumdolors"


@contextmanager
def members() -> Iterator[list[Server]]:
    ports = [free_port() for _ in range(3)]
    section = {"members": [f"127.0.0.1:{p}" for p in ports], "hashKey": KEY}
    with _workdir("bench-cluster-") as workdir, ExitStack() as stack:
        servers = []
        for index, port in enumerate(ports):
            home = workdir / f"m{index}"
            home.mkdir()
            config = {**ocireg_config(home / "root", port), "cluster": section}
            (home / "config.json").write_text(json.dumps(config))
            argv = [sys.executable, "-m", "ocireg", "serve", str(home / "config.json")]
            servers.append(stack.enter_context(_process(f"m{index}", argv, home, port)))
        yield servers


def owned_by(member: int) -> str:
    return next(f"bench/r{k}" for k in range(1000) if owner_index(KEY, 3, f"bench/r{k}") == member)


def hwm_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1])


def push_blob(url: str, repo: str, mib: int) -> str:
    chunk = os.urandom(1 << 20)
    digest = hashlib.sha256()
    for _ in range(mib):
        digest.update(chunk)
    with httpx.Client(base_url=url, timeout=600) as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        body = (chunk for _ in range(mib))
        location = client.patch(location, content=body).headers["Location"]
        done = client.put(location, params={"digest": f"sha256:{digest.hexdigest()}"})
        done.raise_for_status()
    return f"sha256:{digest.hexdigest()}"


def blob_mib_s(url: str, repo: str, digest: str, mib: int) -> float:
    with httpx.Client(base_url=url, timeout=600) as client:
        started = time.perf_counter()
        with client.stream("GET", f"/v2/{repo}/blobs/{digest}") as answer:
            for _ in answer.iter_raw(1 << 20):
                pass
        return mib / (time.perf_counter() - started)


def manifest_ms(url: str, repo: str, count: int) -> tuple[float, float]:
    with httpx.Client(base_url=url, timeout=60) as client:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            client.get(f"/v2/{repo}/manifests/v1").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def put_manifest(url: str, repo: str) -> None:
    config = b"{}"
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    with httpx.Client(base_url=url, timeout=60) as client:
        client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=config)
        descriptor = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest, "size": 2}
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor,
            "layers": [descriptor],
        }
        headers = {"Content-Type": manifest["mediaType"]}
        client.put(f"/v2/{repo}/manifests/v1", content=json.dumps(manifest), headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blob-mib", type=int, default=256)
    parser.add_argument("--manifests", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    with members() as servers:
        owner, proxy = servers[1], servers[0]
        repo = owned_by(1)
        before = hwm_kib(proxy.pid or 0)
        digest = push_blob(proxy.url, repo, args.blob_mib)
        direct = blob_mib_s(owner.url, repo, digest, args.blob_mib)
        through = blob_mib_s(proxy.url, repo, digest, args.blob_mib)
        grown = (hwm_kib(proxy.pid or 0) - before) / 1024
        put_manifest(owner.url, repo)
        direct_ms = manifest_ms(owner.url, repo, args.manifests)
        through_ms = manifest_ms(proxy.url, repo, args.manifests)
    load = os.getloadavg()[0]
    rows.append(f"| blob GET {args.blob_mib} MiB, MiB/s | {direct:.0f} | {through:.0f} |")
    rows.append(
        f"| manifest GET median / p99, ms | {direct_ms[0]:.1f} / {direct_ms[1]:.1f} "
        f"| {through_ms[0]:.1f} / {through_ms[1]:.1f} |"
    )
    rows.append(
        f"| proxying member's peak RSS growth (push + GET through it), MiB | - | {grown:.0f} |"
    )
    table = "\n".join(
        ["| measure | to the owner | through another member |", "| --- | --- | --- |", *rows]
    )
    text = f"{table}\n\nload average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
