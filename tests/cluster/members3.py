"""Three live ``ocireg serve`` members of one cluster on loopback, each with its own storage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ocireg.cluster.hashing import owner_index
from tests.liveserver import LiveServer, free_port, running, write_config

HASH_KEY = "loremipsumdolors"
SIZE = 3


def owned_by(member: int, prefix: str, skip: int = 0) -> str:
    """A repository name starting with ``prefix`` that member ``member`` owns (the
    ``skip``-th such name)."""
    found = 0
    for k in range(10_000):
        name = f"{prefix}{k}"
        if owner_index(HASH_KEY, SIZE, name) == member:
            if found == skip:
                return name
            found += 1
    raise AssertionError("no such name")


def cluster_section(ports: list[int], tls: dict[str, Any] | None = None) -> dict[str, Any]:
    section: dict[str, Any] = {
        "members": [f"127.0.0.1:{port}" for port in ports],
        "hashKey": HASH_KEY,
    }
    if tls is not None:
        section["tls"] = tls
    return section


@contextmanager
def three_members(
    directory: Path,
    extra: dict[str, Any] | None = None,
    tls: dict[str, Any] | None = None,
    started: tuple[int, ...] = (0, 1, 2),
) -> Iterator[list[LiveServer]]:
    """Members 0, 1 and 2, in ``cluster.members`` order (only those in ``started`` run).
    ``extra`` sections go into every member's file (``http.tls`` makes them serve HTTPS);
    ``tls`` is ``cluster.tls``."""
    ports = [free_port() for _ in range(SIZE)]
    https = bool((extra or {}).get("http", {}).get("tls"))
    with ExitStack() as stack:
        members = []
        for index, port in enumerate(ports):
            if index not in started:
                continue
            home = directory / f"member{index}"
            home.mkdir(parents=True)
            sections = {**(extra or {}), "cluster": cluster_section(ports, tls)}
            config = write_config(home, home / "data", port, sections)
            url = f"{'https' if https else 'http'}://127.0.0.1:{port}"
            server = running(["serve", str(config)], home, url, home / "data")
            members.append(stack.enter_context(server))
        yield members
