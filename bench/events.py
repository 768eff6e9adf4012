"""Events figures (issue 19): push throughput with two HTTP sinks configured against none, and
the events per second that one delivery worker sends to one HTTP sink.

* push: ``--pushes`` pushes from ``--clients`` concurrent clients over ``--repos``
  repositories, against ocireg without the events extension and with two HTTP sinks (two
  local receivers answering 204 at once); alternated ``--rounds`` times, medians reported.
  Target: with sinks >= 0.9x without. ``--kind image`` times image pushes as clients make
  them (skopeo, docker, oras): a config and a 1 KiB layer, both new, each a HEAD (404), a
  POST and a PUT with the bytes, then the manifest (one event per push, as for every push).
  ``--kind manifest`` times manifest PUTs alone (distinct manifests, blobs pushed
  beforehand): a push whose blobs are all there already, the worst case for the ratio (the
  registry's least work per event).
  ``--start``: timed right after the registry answers (``push``: the sender process starts
  meanwhile, a one-off ~0.16 CPU-second on the stop-19 host), once it has
  finished starting (``push_warm``), or both.
* delivery: ``--events`` events queued while the receiver is down (pushes into 1 repository,
  then into 16), then the receiver starts and the time until it has them all is measured.
  One repository's events go one at a time (in order); several repositories' go in parallel.

    python bench/events.py --pushes 600 --clients 8 --rounds 3 --events 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from procstat import cpu_seconds, tree
from servers import _process, _workdir, free_port, ocireg_config
from workload import (
    OCI_CONFIG,
    OCI_LAYER,
    descriptor,
    expect,
    image_manifest,
    pool,
    push_blob,
    push_image_base,
    put_manifest,
    sha256,
)


class Receiver:
    """Counts POSTs and answers 204 at once, in a process of its own (so that its CPU is not
    taken from the pushing client), on asyncio (see ``_Answering``)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._count = multiprocessing.Value("i", 0)
        self._first = multiprocessing.Value("d", 0.0)  # time.monotonic() of the first delivery
        self._last = multiprocessing.Value("d", 0.0)
        self._process: multiprocessing.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    @property
    def pid(self) -> int:
        assert self._process is not None and self._process.pid is not None
        return self._process.pid

    @property
    def count(self) -> int:
        return int(self._count.value)

    @property
    def seconds(self) -> float:
        """From the first delivery to the latest."""
        return float(self._last.value - self._first.value)

    def start(self) -> None:
        self._process = multiprocessing.Process(
            target=_serve, args=(self.port, self._count, self._first, self._last), daemon=True
        )
        self._process.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the receiver did not listen")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join()


class _Answering(asyncio.Protocol):
    """Reads HTTP/1.1 requests off one kept-alive connection and answers each 204 at once:
    the least a receiver can cost (a real receiver runs on another machine, so its CPU is not
    the registry's; on this machine it would be taken from the pushes)."""

    def __init__(self, delivered: Any) -> None:
        self.delivered = delivered
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answered = 0
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:")
            length = 0 if start < 0 else int(head[start + 15 :].split(b"\r\n", 1)[0])
            if len(self.buffer) < end + 4 + length:
                break
            self.buffer = self.buffer[end + 4 + length :]
            answered += 1
        if answered:
            self.delivered(answered)
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n" * answered)


def _serve(port: int, count: Any, first: Any, last: Any) -> None:
    def delivered(answered: int) -> None:
        now = time.monotonic()
        with count.get_lock():
            count.value += answered
            last.value = now
            if not first.value:
                first.value = now

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Answering(delivered), "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(serve())


def settled(pid: int, sinks: list[str], timeout: float = 30.0) -> None:
    """Wait until the registry has finished starting: its sender process (with sinks) is up
    and its process tree has stopped using CPU (the sender's own start-up is ~0.16 CPU-second
    on the stop-19 host, as long as ~100 pushes take there, registry and client)."""
    deadline = time.monotonic() + timeout
    used = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now - used < 0.03 and (not sinks or len(tree(pid)) > 1):
            return
        used = now
    raise RuntimeError("the registry did not settle")


def write_config(workdir: Path, port: int, sinks: list[str]) -> Path:
    """``workdir/config.json``: ocireg on ``workdir/root`` with one HTTP sink per URL."""
    config: dict[str, Any] = ocireg_config(workdir / "root", port)
    if sinks:
        config["extensions"] = {
            "events": {"sinks": [{"type": "http", "address": url} for url in sinks]}
        }
    path = workdir / "config.json"
    path.write_text(json.dumps(config))
    return path


@contextmanager
def registry(sinks: list[str], workdir: Path | None = None, warm: bool = False) -> Iterator[str]:
    """ocireg with one HTTP sink per URL in ``sinks``, on ``workdir``'s root if given;
    ``warm``: once it has finished starting (see ``settled``)."""
    with _workdir("bench-events-") as fresh:
        workdir = workdir or fresh
        port = free_port()
        argv = [sys.executable, "-m", "ocireg", "serve", str(write_config(workdir, port, sinks))]
        with _process("ocireg", argv, workdir, port) as server:
            if warm:
                settled(server.pid, sinks)
            yield server.url


async def push_many(
    url: str, repos: int, pushes: int, clients: int, kind: str = "manifest"
) -> float:
    """Pushes per second of ``pushes`` pushes of ``kind`` (see the module's text)."""
    if kind == "image":
        return await push_images(url, repos, pushes, clients)
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


def _image(number: int) -> tuple[bytes, bytes, bytes]:
    """(config, layer, manifest) of a new image: each push's own bytes."""
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {"Labels": {"n": str(number)}}},
        separators=(",", ":"),
    ).encode()
    layer = os.urandom(1024)
    manifest = image_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    return config, layer, manifest


async def _push_new_blob(client: httpx.AsyncClient, repo: str, data: bytes) -> None:
    """As a client pushes a blob: a HEAD to see whether the registry has it (404), then a
    POST and a PUT with the bytes."""
    digest = sha256(data)
    expect(await client.head(f"/v2/{repo}/blobs/{digest}"), 404)
    await push_blob(client, repo, digest, data, len(data))


async def push_images(url: str, repos: int, pushes: int, clients: int) -> float:
    """Pushes per second of ``pushes`` new images (made before the clock starts)."""
    names = [f"bench/events-{n}" for n in range(repos)]
    work = [(names[n % repos], n, _image(n)) for n in range(pushes)]
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for name in names:  # the repositories exist: their creation is not timed
            await push_blob(client, name, sha256(b"{}"), b"{}", 2)

        async def push(item: tuple[str, int, tuple[bytes, bytes, bytes]]) -> None:
            name, number, (config, layer, manifest) = item
            await _push_new_blob(client, name, config)
            await _push_new_blob(client, name, layer)
            await put_manifest(client, name, f"t{number}", manifest)

        started = time.perf_counter()
        await pool(clients, work, push)
        return pushes / (time.perf_counter() - started)


def push_throughput(args: argparse.Namespace, warm: bool, kind: str) -> dict[str, Any]:
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
                with registry(sinks, warm=warm) as url:
                    rate = asyncio.run(push_many(url, args.repos, args.pushes, args.clients, kind))
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
    return (events - 1) / receiver.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--repos", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument(
        "--start",
        choices=("cold", "warm", "both"),
        default="both",
        help="time the pushes right after the registry answers (cold), or once it has "
        "finished starting, its sender process included (warm)",
    )
    parser.add_argument(
        "--kind",
        choices=("image", "manifest", "both"),
        default="both",
        help="what a push is: a new image (blobs and manifest) or a manifest PUT alone",
    )
    parser.add_argument("--no-delivery", action="store_true", help="skip the delivery figures")
    args = parser.parse_args()
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    kinds = ("image", "manifest") if args.kind == "both" else (args.kind,)
    for kind in kinds:
        suffix = "" if kind == "manifest" else "_image"  # (manifest: the keys of before)
        if args.start in ("cold", "both"):
            results[f"push{suffix}"] = push_throughput(args, warm=False, kind=kind)
        if args.start in ("warm", "both"):
            results[f"push_warm{suffix}"] = push_throughput(args, warm=True, kind=kind)
    if not args.no_delivery:
        results["delivery_events_per_s"] = {
            "1_repo": delivery_rate(args.events, 1),
            "16_repos": delivery_rate(args.events, 16),
        }
    results["load_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
