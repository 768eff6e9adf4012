"""Start ``ocireg serve`` as a real process on a loopback port, for integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def log_events(self) -> list[dict[str, Any]]:
        """Every line of the log, each a JSON object (a line that is not one fails the test)."""
        return [json.loads(line) for line in self.log_lines()]


def write_config(directory: Path, root: Path, port: int, extra: dict[str, Any] | None) -> Path:
    config: dict[str, Any] = {
        "distSpecVersion": "1.1.1",
        "storage": {"rootDirectory": str(root)},
        "http": {"address": "127.0.0.1", "port": port, "compat": ["docker2s2"]},
        "log": {"level": "info"},
    }
    for section, values in (extra or {}).items():
        config.setdefault(section, {}).update(values)
    path = directory / "config.json"
    path.write_text(json.dumps(config))
    return path


@contextmanager
def live_server(
    directory: Path,
    extra: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    module: str = "ocireg",
) -> Iterator[LiveServer]:
    """``ocireg serve`` on a free port with a config written from ``extra``'s sections, and
    ``env`` added to the server's environment; ``module`` runs it through a test module that
    wraps ``ocireg`` (one in ``tests``, run from the repository's root)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    root = directory / "data"
    config = write_config(directory, root, port, extra)
    scheme = "https" if (extra or {}).get("http", {}).get("tls") else "http"
    url = f"{scheme}://127.0.0.1:{port}"
    with running(["serve", str(config)], directory, url, root, env=env, module=module) as server:
        yield server


@contextmanager
def running(
    args: list[str],
    cwd: Path,
    url: str,
    root: Path,
    python: str | Path = sys.executable,
    env: dict[str, str] | None = None,
    module: str = "ocireg",
) -> Iterator[LiveServer]:
    """Run ``python -m ocireg ARGS`` (or ``module``) in ``cwd`` until it answers ``GET /v2/``
    at ``url`` (200, or a 401 challenge when authentication is configured)."""
    log = cwd / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(python), "-m", module, *args],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **_importable(module), **(env or {})},
        )
    server = LiveServer(url, root, log, process)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(process)


def _importable(module: str) -> dict[str, str]:
    """The environment that lets the server import ``module`` from ``tests`` (it runs in
    another directory)."""
    if not module.startswith("tests."):
        return {}
    here = str(Path(__file__).resolve().parent.parent)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server and its workers (a test may have stopped them all already)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        process.wait()
        return
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_ready(server: LiveServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"ocireg exited early:\n{server.log.read_text()}")
        try:
            answer = httpx.get(server.url + "/v2/", timeout=1, verify=False)
            if answer.status_code == 200 or "WWW-Authenticate" in answer.headers:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"ocireg did not start in {timeout}s:\n{server.log.read_text()}")
