"""Several ``ocireg serve`` instances on one bucket and one PostgreSQL meta DB, each with a local
directory of its own (as on separate machines), started by the tests."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.liveserver import LiveServer, free_port, running, write_config
from tests.postgres import Postgres
from tests.s3server import ENV, S3Endpoint

T = TypeVar("T")
T = TypeVar("T")
STARTED = "start-up cleanup done"  # each instance's log line once it is ready to share


@dataclass(frozen=True)
class Shared:
    """One bucket prefix and one database: what every instance of a test shares."""

    bucket: str
    prefix: str
    database: str
    endpoint: S3Endpoint

    def config(self, **storage: Any) -> dict[str, Any]:
        driver = self.endpoint.driver_config(self.bucket, rootdirectory=self.prefix)
        return {
            "storage": {
                "storageDriver": driver,
                "cacheDriver": {"name": "postgres", "url": self.database},
                "dedupe": True,  # by reference on s3, written as an operator must
                **storage,
            },
            "extensions": {"search": {"enable": True}},
        }


def new_shared(endpoint: S3Endpoint, bucket: str, postgres: Postgres) -> Shared:
    return Shared(bucket, f"t-{uuid.uuid4().hex[:12]}", postgres.new_database(), endpoint)


def wait_for_line(server: LiveServer, message: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(message in line for line in server.log_lines()):
        assert time.monotonic() < deadline, f"no {message!r} in {server.log}"
        time.sleep(0.05)


@contextmanager
def instance(home: Path, config: dict[str, Any], port: int | None = None) -> Iterator[LiveServer]:
    """One instance in ``home`` (its local rootDirectory is ``home/data``), ready to share:
    its start-up cleanup (which aborts multipart uploads it takes for orphans) is done."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    path = write_config(home, home / "data", port, config)
    with running(["serve", str(path)], home, f"http://127.0.0.1:{port}", home / "data",
                 env=ENV) as server:  # fmt: skip
        wait_for_line(server, STARTED)
        yield server


@contextmanager
def instances(
    directory: Path, config: dict[str, Any], count: int = 3
) -> Iterator[list[LiveServer]]:
    """``count`` instances of one configuration, started at once (start-up is mostly Python's
    imports, slow on a busy machine)."""
    starting = [instance(directory / f"instance{k}", config) for k in range(count)]
    with ExitStack() as stack, ThreadPoolExecutor(count) as pool:
        entered = [pool.submit(manager.__enter__) for manager in starting]
        for manager, future in zip(starting, entered, strict=True):
            if future.exception() is None:
                stack.push(manager.__exit__)
        servers = [future.result() for future in entered]
        yield servers


def settled(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 30) -> T:
    """``read()`` once ``done`` holds of it (the meta DB and search catch up with writes
    within a second or two: each instance flushes what it recorded every second)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def clients(servers: list[LiveServer], timeout: float = 60) -> list[httpx.Client]:
    return [httpx.Client(base_url=s.url, timeout=timeout) for s in servers]


def run_skopeo(binary: str, *args: str) -> str:
    result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"skopeo {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def ocireg(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocireg", *args], capture_output=True, text=True, timeout=timeout
    )
