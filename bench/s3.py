"""Blob push and pull on S3: ocireg's s3 driver against docker-registry's own s3 driver, both on
one moto_server endpoint (each its own bucket), side by side in one run; and ocireg's RSS
during a large upload.

Each registry serves the bytes itself (docker-registry's ``redirect: disable``, ocireg without
``redirectBlobURL``). A push is ``POST``, one streamed ``PATCH`` and ``PUT ?digest=``; a pull
is one streamed ``GET``. Interleaved runs, medians.

    python bench/s3.py --mib 256 --runs 3 --rss-mib 1024
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from procstat import rss_kib
from s3_clients import KEY, REGION, SECRET, start_moto
from servers import DOCKER_REGISTRY, Server, _process, _workdir, free_port

PIECE = 1 << 20


def _make_bucket(url: str, name: str) -> None:
    import boto3

    boto3.client(
        "s3", endpoint_url=url, region_name=REGION, aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    ).create_bucket(Bucket=name)  # fmt: skip


@contextmanager
def ocireg_on_s3(endpoint: str) -> Iterator[Server]:
    _make_bucket(endpoint, "ocireg")
    with _workdir("bench-s3-ocireg-") as workdir:
        port = free_port()
        driver = {
            "name": "s3", "region": REGION, "regionendpoint": endpoint, "bucket": "ocireg",
            "rootdirectory": "reg", "secure": False, "accesskey": KEY, "secretkey": SECRET,
        }  # fmt: skip
        config = {
            "distSpecVersion": "1.1.1",
            "storage": {"rootDirectory": str(workdir / "root"), "storageDriver": driver},
            "http": {"address": "127.0.0.1", "port": port, "compat": ["docker2s2"]},
            "log": {"level": "warn"},
        }
        (workdir / "config.json").write_text(json.dumps(config))
        argv = [sys.executable, "-m", "ocireg", "serve", str(workdir / "config.json")]
        with _process("ocireg", argv, workdir, port, "ocireg s3 driver") as server:
            yield server


@contextmanager
def docker_registry_on_s3(endpoint: str) -> Iterator[Server]:
    _make_bucket(endpoint, "distribution")
    with _workdir("bench-s3-distribution-") as workdir:
        port = free_port()
        (workdir / "config.yml").write_text(
            "version: 0.1\n"
            "log:\n  level: error\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            "  s3:\n"
            f"    region: {REGION}\n    regionendpoint: {endpoint}\n    bucket: distribution\n"
            f"    accesskey: {KEY}\n    secretkey: {SECRET}\n    secure: false\n"
            "    rootdirectory: /reg\n"
            "  delete:\n    enabled: true\n"
            "  redirect:\n    disable: true\n"
            "  cache:\n    blobdescriptor: inmemory\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        argv = [DOCKER_REGISTRY, "serve", str(workdir / "config.yml")]
        with _process("docker-registry", argv, workdir, port, "distribution s3 driver") as server:
            yield server


def _body(mib: int, seed: bytes) -> Iterator[bytes]:
    piece = hashlib.sha256(seed).digest() * (PIECE // 32)
    for _ in range(mib):
        yield piece


def _digest(mib: int, seed: bytes) -> str:
    hasher = hashlib.sha256()
    for piece in _body(mib, seed):
        hasher.update(piece)
    return f"sha256:{hasher.hexdigest()}"


def push(server: Server, repo: str, mib: int, seed: bytes) -> tuple[str, float]:
    digest = _digest(mib, seed)
    with httpx.Client(base_url=server.url, timeout=600) as client:
        started = time.perf_counter()
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        patched = client.patch(location, content=_body(mib, seed))
        assert patched.status_code == 202, patched.text
        # appended by hand: httpx's params= would drop the query distribution keeps its
        # upload state in (_state=...)
        location = patched.headers["Location"]
        done = client.put(f"{location}{'&' if '?' in location else '?'}digest={digest}")
        assert done.status_code == 201, done.text
        return digest, mib / (time.perf_counter() - started)


def pull(server: Server, repo: str, digest: str, mib: int) -> float:
    with httpx.Client(base_url=server.url, timeout=600) as client:
        started = time.perf_counter()
        total = 0
        with client.stream("GET", f"/v2/{repo}/blobs/{digest}") as answer:
            assert answer.status_code == 200
            for chunk in answer.iter_raw(PIECE):
                total += len(chunk)
        assert total == mib * PIECE
        return mib / (time.perf_counter() - started)


def peak_rss_during(server: Server, work: threading.Thread) -> int:
    """The highest RSS (KiB) of the server's process tree, sampled every 0.1 s during ``work``."""
    assert server.pid is not None
    peak = rss_kib(server.pid)
    work.start()
    while work.is_alive():
        peak = max(peak, rss_kib(server.pid))
        time.sleep(0.1)
    work.join()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256, help="blob size for push/pull")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rss-mib", type=int, default=1024, help="blob size for RSS; 0: skip")
    args = parser.parse_args()
    moto, endpoint = start_moto()
    try:
        with ocireg_on_s3(endpoint) as ours, docker_registry_on_s3(endpoint) as theirs:
            rates: dict[str, dict[str, list[float]]] = {}
            for run in range(args.runs):
                for server in (ours, theirs):
                    seed = f"{server.name}-{run}".encode()
                    digest, pushed = push(server, f"bench/{run}", args.mib, seed)
                    pulled = pull(server, f"bench/{run}", digest, args.mib)
                    figures = rates.setdefault(server.name, {"push": [], "pull": []})
                    figures["push"].append(pushed)
                    figures["pull"].append(pulled)
            print(f"blob {args.mib} MiB, {args.runs} interleaved runs, medians (MiB/s)")
            for name, figures in rates.items():
                print(
                    f"{name:16} push {statistics.median(figures['push']):6.1f}"
                    f"   pull {statistics.median(figures['pull']):6.1f}"
                )
            if args.rss_mib:
                idle = rss_kib(ours.pid or 0)
                work = threading.Thread(target=push, args=(ours, "bench/rss", args.rss_mib, b"r"))
                peak = peak_rss_during(ours, work)
                print(
                    f"ocireg RSS during a {args.rss_mib} MiB upload: peak {peak / 1024:.0f} MiB"
                    f" (idle before: {idle / 1024:.0f} MiB)"
                )
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    # docker-registry's AWS SDK refuses to start with a custom CA bundle on its plain HTTP
    # transport ("LoadCustomCABundleError"); the endpoint here is plain HTTP, so none is needed
    os.environ.pop("AWS_CA_BUNDLE", None)
    main()
