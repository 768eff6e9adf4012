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
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import manifestload
from procstat import cpu_seconds, rss_kib
from s3_clients import KEY, REGION, SECRET, s3_requests, start_moto
from servers import DOCKER_REGISTRY, Server, _process, _workdir, free_port

PIECE = 1 << 20


def _make_bucket(url: str, name: str) -> None:
    import boto3

    boto3.client(
        "s3", endpoint_url=url, region_name=REGION, aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
    ).create_bucket(Bucket=name)  # fmt: skip


def ocireg_s3_config(
    endpoint: str,
    bucket: str,
    root: Path,
    port: int,
    postgres_url: str | None = None,
    dedupe: bool = True,
) -> dict[str, object]:
    driver = {
        "name": "s3", "region": REGION, "regionendpoint": endpoint, "bucket": bucket,
        "rootdirectory": "reg", "secure": False, "accesskey": KEY, "secretkey": SECRET,
    }  # fmt: skip
    storage: dict[str, object] = {
        "rootDirectory": str(root), "storageDriver": driver, "dedupe": dedupe,
    }  # fmt: skip
    if postgres_url:
        storage["cacheDriver"] = {"name": "postgres", "url": postgres_url}
    return {
        "distSpecVersion": "1.1.1",
        "storage": storage,
        "http": {"address": "127.0.0.1", "port": port, "compat": ["docker2s2"]},
        "log": {"level": "warn"},
    }


@contextmanager
def ocireg_on_s3(
    endpoint: str,
    bucket: str = "ocireg",
    name: str = "ocireg",
    postgres_url: str | None = None,
    make_bucket: bool = True,
    dedupe: bool = True,
) -> Iterator[Server]:
    """One ocireg serving ``bucket`` (made first unless ``make_bucket`` is false: instances
    sharing it), with its local directory of its own and, with ``postgres_url``, its meta DB
    in PostgreSQL."""
    if make_bucket:
        _make_bucket(endpoint, bucket)
    with _workdir(f"bench-s3-{name}-") as workdir:
        port = free_port()
        config = ocireg_s3_config(endpoint, bucket, workdir / "root", port, postgres_url, dedupe)
        (workdir / "config.json").write_text(json.dumps(config))
        argv = [sys.executable, "-m", "ocireg", "serve", str(workdir / "config.json")]
        detail = "ocireg s3 driver" + (", meta DB on PostgreSQL" if postgres_url else "")
        with _process(name, argv, workdir, port, detail) as server:
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


def pull_socket(server: Server, repo: str, digest: str, mib: int) -> float:
    """``pull`` by a client that costs next to nothing per byte: one plain socket, the body
    received into one 1 MiB buffer and dropped. httpx spends more CPU per GiB than either
    server (allocating and joining its pieces), so on two shared cores it, not the server, can
    be what sets a pull's rate; this client leaves the rate to the servers and moto."""
    host, _, port = server.url.removeprefix("http://").rpartition(":")
    buffer = memoryview(bytearray(PIECE))
    with socket.create_connection((host, int(port)), timeout=600) as conn:
        started = time.perf_counter()
        conn.sendall(
            f"GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {host}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        received = b""
        while b"\r\n\r\n" not in received:
            piece = conn.recv(PIECE)
            assert piece, "the connection closed before the answer's head"
            received += piece
        head, _, total_bytes = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].split()[1] == "200", lines[0]
        fields = {
            name.lower(): value.strip() for name, _, value in (x.partition(":") for x in lines[1:])
        }
        assert int(fields["content-length"]) == mib * PIECE, fields
        total = len(total_bytes)
        while total < mib * PIECE and (got := conn.recv_into(buffer)):
            total += got
        assert total == mib * PIECE
        return mib / (time.perf_counter() - started)


CLIENTS = {"httpx": pull, "socket": pull_socket}


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


def blob_rounds(
    ours: Server,
    theirs: Server,
    mib: int,
    runs: int,
    moto_pid: int,
    client: str = "httpx",
    pushes_first: bool = False,
) -> None:
    """Push then pull a blob through each registry in turn, ``runs`` times (``pushes_first``:
    every push first, then the pulls in the same order, so that no pull follows its own push
    straight away). Besides the rates, the CPU each registry, the endpoint and the pulling
    client (this process, idle otherwise meanwhile) spent per GiB pulled: on a loaded host
    the rates swing between runs far more than the CPU does, and on two cores the three
    share them."""
    rates: dict[str, dict[str, list[float]]] = {}
    blobs: dict[tuple[str, int], tuple[str, float]] = {}

    def push_blob(server: Server, run: int) -> None:
        seed = f"{server.name}-{run}".encode()
        blobs[server.name, run] = push(server, f"bench/{run}", mib, seed)

    if pushes_first:
        for run in range(runs):
            for server in (ours, theirs):
                push_blob(server, run)
    for run in range(runs):
        for server in (ours, theirs):
            if not pushes_first:
                push_blob(server, run)
            digest, pushed = blobs[server.name, run]
            assert server.pid is not None
            own, endpoint = cpu_seconds(server.pid), cpu_seconds(moto_pid)
            mine = time.process_time()
            pulled = CLIENTS[client](server, f"bench/{run}", digest, mib)
            mine = time.process_time() - mine
            per_gib = 1024 / mib
            figures = rates.setdefault(
                server.name, {"push": [], "pull": [], "cpu": [], "moto": [], "client": []}
            )
            figures["push"].append(pushed)
            figures["pull"].append(pulled)
            figures["cpu"].append((cpu_seconds(server.pid) - own) * per_gib)
            figures["moto"].append((cpu_seconds(moto_pid) - endpoint) * per_gib)
            figures["client"].append(mine * per_gib)
    order = ", every push first" if pushes_first else ""
    print(
        f"blob {mib} MiB, {runs} interleaved runs{order}, {client} client, medians"
        " (MiB/s; pull CPU s per GiB)"
    )
    for name, figures in rates.items():
        print(
            f"{name:16} push {statistics.median(figures['push']):6.1f}"
            f"   pull {statistics.median(figures['pull']):6.1f}"
            f" (runs: {', '.join(f'{rate:.0f}' for rate in figures['pull'])})"
            f"   pull CPU {statistics.median(figures['cpu']):5.2f}"
            f"   moto CPU {statistics.median(figures['moto']):5.2f}"
            f"   client CPU {statistics.median(figures['client']):5.2f}"
        )


def manifest_rounds(
    ours: Server, theirs: Server, args: argparse.Namespace, moto_log: Path, moto_pid: int
) -> None:
    """Manifest GET by tag and PUT under new tags, wrk with ``--clients`` connections, the two
    registries in turn each round; then each one's costs per request, sequentially."""
    folder = manifestload.scratch_dir()
    repo, bodies = "bench/manifests", {}
    for server in (ours, theirs):
        bodies[server.name] = manifestload.prepare(server, repo, "v1", folder)
    figures: dict[tuple[str, str], list[manifestload.Load]] = {}
    for _ in range(args.rounds):
        for server in (ours, theirs):
            slots = manifestload.spread(args.clients, [server], 1)
            get = manifestload.get_load(slots, args.seconds, repo, "v1")
            put = manifestload.put_load(slots, args.seconds, repo, bodies[server.name])
            figures.setdefault((server.name, "GET"), []).append(get)
            figures.setdefault((server.name, "PUT"), []).append(put)
    print(
        f"manifest GET by tag / PUT by new tag, wrk {args.clients} connections, "
        f"{args.seconds} s, {args.rounds} interleaved rounds, medians"
    )
    print(f"{'registry':16} {'op':4} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} errors (all rounds)")
    for (name, op), loads in figures.items():
        print(
            f"{name:16} {op:4} {statistics.median(x.rate for x in loads):8.0f}"
            f" {statistics.median(x.median_p50() for x in loads):7.1f}"
            f" {statistics.median(x.worst_p99() for x in loads):7.1f}"
            f" {manifestload.error_text(loads)}"
        )
    print(f"costs per request, {args.cost_requests} sequential requests on one connection")
    print(
        f"{'registry':16} {'op':7} {'wall ms':>7} {'CPU ms':>7} {'moto ms':>7} {'S3 requests':>11}"
    )
    for server, bucket in ((ours, "ocireg"), (theirs, "distribution")):
        body = bodies[server.name].read_bytes()
        count = args.cost_requests
        work = {
            "GET": manifestload.sequential_gets(repo, "v1", count),
            "PUT": manifestload.sequential_puts(repo, body, count, "cost-"),
            "PUT new": distinct_puts(repo, body, count, "new-"),
        }
        for op, requests in work.items():
            costs = manifestload.measure_costs(
                server,
                requests,
                count,
                s3_count=lambda b=bucket: s3_requests(moto_log, b),
                endpoint_pid=moto_pid,
            )
            print(
                f"{server.name:16} {op:7} {costs.wall_ms:7.1f} {costs.cpu_ms:7.2f}"
                f" {costs.endpoint_cpu_ms or 0:7.2f}"
                f" {costs.s3_requests or 0:11.2f}"
            )


def distinct_puts(
    repo: str, body: bytes, count: int, prefix: str
) -> Callable[[httpx.Client], None]:
    """``count`` PUTs of manifests each registry has not seen (the one ``body`` with an
    annotation of its own, the same config and layer), by new tags, one after another."""
    document = json.loads(body)

    def run(client: httpx.Client) -> None:
        for n in range(count):
            document["annotations"] = {"bench.put": f"{prefix}{n}"}
            answer = client.put(
                f"/v2/{repo}/manifests/{prefix}{n}",
                content=json.dumps(document).encode(),
                headers={"Content-Type": manifestload.OCI_MANIFEST},
            )
            answer.raise_for_status()

    return run


def fresh_rss(endpoint: str, mib: int) -> None:
    """A 2 GiB-class upload to a server started for it alone (its own bucket), so that the
    figure is not the baseline left by earlier traffic; prints the idle baseline with it."""
    with ocireg_on_s3(endpoint, bucket="ocireg-rss", name="ocireg-rss") as fresh:
        assert fresh.pid is not None
        time.sleep(2)  # start-up's own work (multipart sweep, meta DB) done
        idle = rss_kib(fresh.pid)
        work = threading.Thread(target=push, args=(fresh, "bench/rss", mib, b"r"))
        started = time.perf_counter()
        peak = peak_rss_during(fresh, work)
        seconds = time.perf_counter() - started
        print(
            f"ocireg (fresh server) RSS during a {mib} MiB upload: peak {peak / 1024:.0f} MiB "
            f"sampled every 0.1 s, VmHWM {hwm_kib(fresh.pid) / 1024:.0f} MiB; idle baseline "
            f"{idle / 1024:.0f} MiB; {mib / seconds:.1f} MiB/s"
        )


def hwm_kib(pid: int) -> int:
    """The process's own peak RSS (the kernel's high-water mark, missed by no sample)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256, help="blob size for push/pull; 0: skip")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rss-mib", type=int, default=1024, help="blob size for RSS; 0: skip")
    parser.add_argument("--seconds", type=int, default=0, help="manifest wrk runs; 0: skip")
    parser.add_argument("--clients", type=int, default=8, help="manifest wrk connections")
    parser.add_argument("--rounds", type=int, default=3, help="manifest rounds")
    parser.add_argument("--cost-requests", type=int, default=200)
    parser.add_argument(
        "--client", choices=sorted(CLIENTS), default="httpx", help="the pulls' client"
    )
    parser.add_argument(
        "--pushes-first", action="store_true", help="push every blob before the first pull"
    )
    parser.add_argument(
        "--no-dedupe", action="store_true", help="ocireg with storage.dedupe off (on: default)"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-s3-moto-"))
    moto, endpoint = start_moto(folder / "moto.log")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    try:
        if args.mib or args.seconds:
            ours_on_s3 = ocireg_on_s3(endpoint, dedupe=not args.no_dedupe)
            with ours_on_s3 as ours, docker_registry_on_s3(endpoint) as theirs:
                if args.mib:
                    blob_rounds(
                        ours, theirs, args.mib, args.runs, moto.pid, args.client, args.pushes_first
                    )
                if args.seconds:
                    manifest_rounds(ours, theirs, args, folder / "moto.log", moto.pid)
        if args.rss_mib:
            fresh_rss(endpoint, args.rss_mib)
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    # docker-registry's AWS SDK refuses to start with a custom CA bundle on its plain HTTP
    # transport ("LoadCustomCABundleError"); the endpoint here is plain HTTP, so none is needed
    os.environ.pop("AWS_CA_BUNDLE", None)
    main()
