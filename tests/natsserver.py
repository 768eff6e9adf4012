"""Debian's nats-server on a loopback port, and a nats-py subscriber in a thread of its own."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.liveserver import free_port
from tests.tools import require_binary


@dataclass
class NatsServer:
    url: str
    token: str


@contextmanager
def nats_server(directory: Path, token: str) -> Iterator[NatsServer]:
    binary = require_binary("nats-server", "apt-get install nats-server")
    port = free_port()
    log = open(directory / "nats.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port), "--auth", token],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_listening(port, process)
        yield NatsServer(f"nats://127.0.0.1:{port}", token)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("nats-server exited early")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError("nats-server did not listen in 10s")


@dataclass
class Subscriber:
    """Collects every message on ``subject`` (as parsed JSON, with its headers)."""

    server: NatsServer
    subject: str
    messages: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Subscriber:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the NATS subscriber did not start")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    async def _run(self) -> None:
        import nats

        connection = await nats.connect(self.server.url, token=self.server.token)

        async def collect(message: Any) -> None:
            self.messages.append((json.loads(message.data), dict(message.headers or {})))

        await connection.subscribe(self.subject, cb=collect)
        await connection.flush()
        self._ready.set()
        while not self._stop.is_set():
            await asyncio.sleep(0.02)
        await connection.close()

    def wait_for(
        self, count: int, timeout: float = 20.0
    ) -> list[tuple[dict[str, Any], dict[str, str]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"NATS: {len(self.messages)} of {count} messages in {timeout}s")
