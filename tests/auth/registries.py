"""Live registries with authentication on, for tests that point real clients at them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bcrypt

from tests.auth.tokenserver import TokenServer
from tests.liveserver import LiveServer, live_server

EVERY_ACTION = ["read", "create", "update", "delete"]


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    lines = [
        f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()}" for u, p in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def full_access(*users: str) -> dict[str, Any]:
    """An ``http.accessControl`` giving ``users`` every action on every repository, and
    nobody else anything."""
    return {"repositories": {"**": {"policies": [{"users": list(users), "actions": EVERY_ACTION}]}}}


@contextmanager
def htpasswd_registry(
    directory: Path,
    users: dict[str, str],
    access_control: dict[str, Any],
    extensions: dict[str, Any] | None = None,
) -> Iterator[LiveServer]:
    """ocireg checking Basic credentials against an htpasswd file of ``users`` (with
    ``extensions`` as its extensions section, if given)."""
    directory.mkdir(parents=True, exist_ok=True)
    extra = {
        "http": {
            "auth": {"htpasswd": {"path": str(write_htpasswd(directory / "htpasswd", users))}},
            "accessControl": access_control,
        }
    }
    if extensions is not None:
        extra["extensions"] = extensions
    with live_server(directory, extra) as live:
        yield live


@contextmanager
def token_registry(directory: Path, tokens: TokenServer) -> Iterator[LiveServer]:
    """ocireg trusting the (running) token server's tokens, and nothing else."""
    extra = {"http": {"auth": {"bearer": tokens.config().model_dump()}}}
    with live_server(directory, extra) as live:
        yield live
