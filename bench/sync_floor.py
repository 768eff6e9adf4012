"""The floor under issue 15's first on-demand pull on this machine: minimal pull-through
mirrors with no framework, next to the direct pull and ocireg's mirror, in one run.

Each floor mirror is one thread per connection on plain sockets: it asks the upstream for what
the client asked, sends the answer's head on, then for each piece received (1 MiB at most)
sends it to the client and does its variant's work, in line:

- ``relay``: nothing more (what the extra hop alone costs);
- ``write``: writes the piece to a file (storage, no digest check);
- ``hash``: feeds the piece to SHA-256 (the digest check, no storage);
- ``store``: both: the least a mirror that stores and checks what it serves does per byte.

A pull is the bench's (``sync.py``): the manifest, then each blob streamed and discarded, by
httpx. Alternated rounds; medians; the ratio is a pull's seconds over the direct pull's in the
same round. ``BENCH_TMPDIR`` places the floor's files (and ocireg's storage).

    python bench/sync_floor.py --rounds 8
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import StreamRequestHandler, TCPServer, ThreadingMixIn

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import docker_registry, free_port
from sync import measured, mirror, push_big
from workload import MiB

FLOORS = ("relay", "write", "hash", "store")
REPO = "bench/big"
PIECE = 1 << 20


def _head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        if not got:
            raise EOFError
        data += got
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def serve_floor(mode: str, port: int, upstream: str, folder: str) -> None:
    """Run one floor mirror of ``mode`` on ``port`` until killed."""
    host, upstream_port = upstream.split(":")
    kept = (b"content-type", b"content-length", b"docker-content-digest")

    class Handler(StreamRequestHandler):
        def handle(self) -> None:
            client = self.connection
            while True:
                try:
                    head, _ = _head(client)
                except (EOFError, ConnectionError):
                    return
                lines = head.split(b"\r\n")
                method, path, _ = lines[0].decode().split(" ")
                accept = [
                    line + b"\r\n" for line in lines[1:] if line.lower().startswith(b"accept")
                ]
                with socket.create_connection((host, int(upstream_port))) as up:
                    asked = f"{method} {path} HTTP/1.1\r\nHost: {upstream}\r\n".encode()
                    up.sendall(asked + b"".join(accept) + b"Connection: close\r\n\r\n")
                    answer, first = _head(up)
                    fields = answer.split(b"\r\n")
                    named = {f.partition(b":")[0].strip().lower(): f for f in fields[1:]}
                    length = (
                        int(named[b"content-length"].partition(b":")[2])
                        if b"content-length" in named
                        else 0
                    )
                    out = [fields[0], *(named[name] for name in kept if name in named)]
                    client.sendall(b"\r\n".join(out) + b"\r\n\r\n")
                    self.body(up, client, path, length, first)

        def body(
            self, up: socket.socket, client: socket.socket, path: str, length: int, first: bytes
        ) -> None:
            blob = "/blobs/" in path
            digest = path.rsplit("/", 1)[-1]
            name = os.path.join(folder, digest.replace(":", "-"))
            file = open(name, "wb", buffering=0) if blob else None  # noqa: SIM115 (closed below)
            hasher = hashlib.sha256()
            done = 0
            piece = first
            try:
                while True:
                    if piece:
                        client.sendall(piece)
                        if file is not None and mode in ("write", "store"):
                            file.write(piece)
                        if mode in ("hash", "store"):
                            hasher.update(piece)
                        done += len(piece)
                    if done >= length:
                        break
                    piece = up.recv(PIECE)
                    if not piece:
                        raise EOFError(f"{path}: {done} of {length} bytes")
            finally:
                if file is not None:
                    file.close()
            if blob and mode in ("hash", "store"):
                assert f"sha256:{hasher.hexdigest()}" == digest, "digest mismatch"

    class Server(ThreadingMixIn, TCPServer):
        allow_reuse_address = True
        daemon_threads = True

    Server(("127.0.0.1", port), Handler).serve_forever()


@contextmanager
def floor_mirror(mode: str, upstream: str) -> Iterator[tuple[str, int]]:
    """A floor mirror of ``mode`` in a process of its own, ready: its URL and pid."""
    port = free_port()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMPDIR")) as folder:
        hostport = upstream.removeprefix("http://")
        argv = [sys.executable, __file__, "--serve", mode, str(port), hostport, folder]
        process = subprocess.Popen(argv)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    httpx.get(url + "/v2/", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            yield url, process.pid
        finally:
            process.kill()
            process.wait()


async def run(args: argparse.Namespace) -> None:
    found: dict[str, list[dict[str, float]]] = {}
    with docker_registry() as upstream:
        async with httpx.AsyncClient(base_url=upstream.url, timeout=600) as client:
            await push_big(client, REPO, args.mib * MiB)
        for round_ in range(args.rounds):
            pulls = {
                "direct": await measured(upstream.url, "bench/big", {"upstream": upstream.pid})
            }
            for mode in FLOORS:
                with floor_mirror(mode, upstream.url) as (url, pid):
                    pulls[mode] = await measured(
                        url, REPO, {"upstream": upstream.pid, "mirror": pid}
                    )
            with mirror(upstream.url, onDemand=True) as (server, _):
                pulls["ocireg"] = await measured(
                    server.url, REPO, {"upstream": upstream.pid, "mirror": server.pid}
                )
            for name, pull in pulls.items():
                pull["ratio"] = round(pull["s"] / pulls["direct"]["s"], 2)
                found.setdefault(name, []).append(pull)
            print(round_, {name: pull["ratio"] for name, pull in pulls.items()}, flush=True)
    load = os.getloadavg()[0]
    print(f"{args.mib} MiB image, {args.rounds} rounds, medians; load average {load:.1f}")
    for name, pulls in found.items():
        figures = {
            key: statistics.median(pull.get(key, 0.0) for pull in pulls)
            for key in ("ratio", "s", "upstream_cpu_s", "mirror_cpu_s", "client_cpu_s")
        }
        ratios = ", ".join(f"{pull['ratio']:.2f}" for pull in pulls)
        print(
            f"{name:7} ratio {figures['ratio']:.2f} ({ratios})  s {figures['s']:.3f}"
            f"  CPU s: upstream {figures['upstream_cpu_s']:.2f}"
            f" mirror {figures['mirror_cpu_s']:.2f} client {figures['client_cpu_s']:.2f}"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        mode, port, upstream, folder = sys.argv[2:6]
        serve_floor(mode, int(port), upstream, folder)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--mib", type=int, default=256)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
