"""Hostile neighbour, connections: manifest GET latency while one client hoards connections.

Starts ``ocireg serve`` with one small image, then:

1. measures manifest GETs, each on a new connection (what a locked-out client could not
   make), one at a time, for ``--seconds / 3`` (quiet);
2. does it again while a hostile client from another address (127.0.0.2) keeps
   ``--connections`` connections open or trying: half idle (connected, nothing sent), half
   slow-header (a header line a second, never the blank line). Whatever the server closes
   or refuses, it opens again, at most ``--reconnects`` a second.

Reported: GET p50/p99/max and failures in both phases; what the hostile client saw (connections
held at once, 429 refusals, closes by the header timeout); the server's peak RSS and open
descriptors. ``--http`` overrides ``http`` keys; ``--nofile N`` starts the server with soft and
hard open-file limits of N (1,024 reproduces issue 21's lock-out with
``--http '{"maxConnectionsPerClient": 0, "readHeaderTimeout": "0"}'``). Loopback only.

    BENCH_TMPDIR=/dev/shm python bench/hostile_connections.py --connections 2000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_search import OCI_MANIFEST, _percentile, populate
from procstat import RssSampler
from search import free_port

HOSTILE_SOURCE = "127.0.0.2"  # all of 127.0.0.0/8 reaches loopback: another client address


def _open(port: int, slow: bool) -> socket.socket | None:
    sock = socket.socket()
    try:
        sock.bind((HOSTILE_SOURCE, 0))
        sock.settimeout(2)
        sock.connect(("127.0.0.1", port))
        if slow:
            sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        sock.setblocking(False)
        return sock
    except OSError:
        sock.close()
        return None


def _answer(sock: socket.socket) -> bytes:
    try:
        return sock.recv(4096)
    except BlockingIOError:
        return b"?"  # readable but nothing yet: keep it
    except OSError:
        return b""


class Hoarder(threading.Thread):
    """The hostile client: keeps up to ``count`` connections, half idle, half slow-header."""

    def __init__(self, port: int, count: int, reconnects: float) -> None:
        super().__init__(daemon=True)
        self.port, self.count, self.reconnects = port, count, reconnects
        self.stop = threading.Event()
        self.seen: Counter[str] = Counter()
        self.held_peak = 0
        self._selector = selectors.DefaultSelector()
        self._slow: set[socket.socket] = set()

    def run(self) -> None:
        next_drip, budget, refill = time.monotonic(), 0.0, time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            budget = min(self.reconnects, budget + (now - refill) * self.reconnects)
            refill = now
            while len(self._selector.get_map()) < self.count and budget >= 1:
                budget -= 1
                self._add(slow=len(self._slow) < self.count // 2)
            self.held_peak = max(self.held_peak, len(self._selector.get_map()))
            if now >= next_drip:
                next_drip = now + 1
                for sock in list(self._slow):
                    try:
                        sock.send(b"X-Slow: y\r\n")
                    except OSError:
                        self._drop(sock, "closed while sending")
            for key, _ in self._selector.select(timeout=0.05):
                self._read(key.fileobj)  # type: ignore[arg-type]
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]

    def _add(self, slow: bool) -> None:
        sock = _open(self.port, slow)
        if sock is None:
            self.seen["connect failed"] += 1
            return
        self.seen["opened"] += 1
        self._selector.register(sock, selectors.EVENT_READ)
        if slow:
            self._slow.add(sock)

    def _read(self, sock: socket.socket) -> None:
        data = _answer(sock)
        if data == b"?":
            return
        if data.startswith(b"HTTP/1.1 429"):
            self._drop(sock, "refused (429)")
        elif data.startswith(b"HTTP/1.1 408"):
            self._drop(sock, "slow header cut off (408)")
        elif data == b"":
            self._drop(sock, "idle closed by server")
        else:
            self._drop(sock, f"other: {data[:20]!r}")

    def _drop(self, sock: socket.socket, why: str) -> None:
        self.seen[why] += 1
        self._slow.discard(sock)
        self._selector.unregister(sock)
        sock.close()


def measure_gets(url: str, seconds: float) -> tuple[list[float], Counter[str]]:
    """Manifest GETs, each on a new connection; failures counted, not fatal."""
    times: list[float] = []
    failures: Counter[str] = Counter()
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=url, timeout=10, limits=fresh) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = client.get(
                    "/v2/small/app/manifests/v1", headers={"Accept": OCI_MANIFEST}
                )
                if response.status_code != 200:
                    failures[f"status {response.status_code}"] += 1
                    continue
                times.append((time.perf_counter() - started) * 1000)
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] += 1
            time.sleep(0.01)
    return times, failures


def report(name: str, times: list[float], failures: Counter[str]) -> None:
    if not times:
        print(f"{name}: no GET succeeded; failures {dict(failures)}")
        return
    print(
        f"{name}: {len(times)} GETs, p50 {_percentile(times, 0.5):.1f} ms, "
        f"p99 {_percentile(times, 0.99):.1f} ms, max {max(times):.1f} ms; "
        f"failures {dict(failures) or 0}"
    )


def _open_fds(pid: int) -> int:
    """Open descriptors of the process and its children (the worker processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return len(os.listdir(f"/proc/{pid}/fd")) + sum(_open_fds(int(c)) for c in children)


class FdSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                self.peak = max(self.peak, _open_fds(self.pid))
            except OSError:
                continue  # a process came or went between two reads


def _limit_files(nofile: int | None):  # type: ignore[no-untyped-def]
    if nofile is None:
        return None
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--reconnects", type=float, default=200.0, help="per second, at most")
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--http", type=json.loads, default={}, help="http keys, as JSON")
    parser.add_argument("--nofile", type=int, default=None)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ocireg-conns-", dir=os.environ.get("BENCH_TMPDIR")))
    root, port = base / "root", free_port()
    try:
        populate(root, 0, 1)
        config = base / "config.json"
        http = {"address": "127.0.0.1", "port": port, **args.http}
        config.write_text(
            json.dumps(
                {
                    "storage": {"rootDirectory": str(root), "gc": False, "dedupe": False},
                    "http": http,
                    "log": {"level": "info"},
                }
            )
        )
        log = base / "server.log"
        with open(log, "wb") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "ocireg", "serve", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_limit_files(args.nofile),
            )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url)
            print(f"http: {json.dumps(args.http)}; open-file limit {args.nofile or 'inherited'}")
            print("; ".join(line for line in log.read_text().splitlines() if "open files" in line))
            fds = FdSampler(server.pid)
            fds.start()
            with RssSampler(server.pid) as rss:
                report("quiet", *measure_gets(url, args.seconds / 3))
                hoarder = Hoarder(port, args.connections, args.reconnects)
                hoarder.start()
                time.sleep(2)  # the first connections in place
                name = f"with one client hoarding {args.connections} connections"
                report(name, *measure_gets(url, args.seconds))
                hoarder.stop.set()
                hoarder.join()
            fds.stop.set()
            print(f"hostile client: held at most {hoarder.held_peak} at once; {dict(hoarder.seen)}")
            print(f"server peak RSS: {rss.peak_kib / 1024:.0f} MiB; peak open fds: {fds.peak}")
        finally:
            server.terminate()
            server.wait(timeout=60)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v2/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("ocireg did not start")


if __name__ == "__main__":
    main()
