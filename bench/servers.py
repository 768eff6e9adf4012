"""Start the two registries under test on free loopback ports with temporary roots."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

DOCKER_REGISTRY = "/usr/bin/docker-registry"
# generous: on a loaded machine an instance with the S3 driver and PostgreSQL took over 30 s
START_TIMEOUT = 120


@dataclass
class Server:
    name: str
    url: str
    pid: int | None  # for RSS and CPU sampling; None for a registry given only by URL
    detail: str = ""  # how it was configured, where it varies between runs (ocireg's workers)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ocireg_config(root: Path, port: int, workers: int = 1) -> dict[str, object]:
    return {
        "distSpecVersion": "1.1.1",
        "storage": {"rootDirectory": str(root)},
        "http": {
            "address": "127.0.0.1",
            "port": port,
            "compat": ["docker2s2"],
            "workers": workers,
        },
        "log": {"level": "warn"},
    }


def docker_registry_config(root: Path, port: int) -> str:
    return (
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {root}\n"
        "  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited early:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/v2/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}: server did not answer GET /v2/ within {START_TIMEOUT} s")


@contextmanager
def _process(
    name: str, argv: list[str], workdir: Path, port: int, detail: str = ""
) -> Iterator[Server]:
    url = f"http://127.0.0.1:{port}"
    log = workdir / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(url, process, log)
        yield Server(name, url, process.pid, detail)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def _workdir(prefix: str) -> Iterator[Path]:
    base = os.environ.get("BENCH_TMPDIR")  # put roots on a particular disk if wanted
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def ocireg(workers: int = 1) -> Iterator[Server]:
    with _workdir("bench-ocireg-") as workdir:
        port = free_port()
        config = workdir / "config.json"
        config.write_text(json.dumps(ocireg_config(workdir / "root", port, workers)))
        argv = [sys.executable, "-m", "ocireg", "serve", str(config)]
        detail = f"ocireg http.workers {workers}"
        with _process("ocireg", argv, workdir, port, detail) as server:
            yield server


@contextmanager
def docker_registry() -> Iterator[Server]:
    if not Path(DOCKER_REGISTRY).exists():
        raise RuntimeError(f"{DOCKER_REGISTRY} is missing: apt-get install -y docker-registry")
    with _workdir("bench-distribution-") as workdir:
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(docker_registry_config(workdir / "root", port))
        argv = [DOCKER_REGISTRY, "serve", str(config)]
        with _process("docker-registry", argv, workdir, port) as server:
            yield server


def docker_registry_version() -> str:
    try:
        out = subprocess.run([DOCKER_REGISTRY, "--version"], capture_output=True, text=True)
    except OSError:
        return "missing"
    return out.stdout.strip() or out.stderr.strip()
