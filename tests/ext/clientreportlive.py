"""A live registry started with ``ocireg serve CONFIG --client-report``, and its report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.liveserver import LiveServer, free_port, running, write_config

REPORT = "/v2/_ocireg/clients/report"


@contextmanager
def reporting_server(
    directory: Path, extra: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> Iterator[LiveServer]:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    root = directory / "data"
    config = write_config(directory, root, port, extra)
    url = f"http://127.0.0.1:{port}"
    arguments = ["serve", str(config), "--client-report"]
    with running(arguments, directory, url, root, env=env) as server:
        yield server


def departures_of(server: LiveServer, prefix: str, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """The departures of the one client whose User-Agent starts with ``prefix``, by rule."""
    report = httpx.get(server.url + REPORT, timeout=30, **kwargs).json()
    (client,) = [c for c in report["clients"] if c["userAgent"].startswith(prefix)]
    return {departure["rule"]: departure for departure in client["departures"]}


def counts(found: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {rule: departure["count"] for rule, departure in found.items()}
