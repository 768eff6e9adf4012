"""The guard's authentication path: what runs on the event loop and what goes to a thread."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from ocireg.auth import guard as guard_module
from ocireg.auth.build import build_guard
from ocireg.auth.guard import Guard, PasswordMethod
from ocireg.auth.policy import AccessControl
from ocireg.config import Config
from ocireg.meta.db import SQLiteMetaDB
from tests.auth.registries import write_htpasswd


def _basic(user: str, password: str) -> list[tuple[bytes, bytes]]:
    token = base64.b64encode(f"{user}:{password}".encode())
    return [(b"authorization", b"Basic " + token)]


def test_a_remembered_password_does_not_go_to_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    verified: set[tuple[str, str]] = set()
    hops: list[Any] = []

    def check(user: str, password: str) -> list[str] | None:
        if password != "pw":
            return None
        verified.add((user, password))
        return []

    def quick(user: str, password: str) -> list[str] | None:
        return [] if (user, password) in verified else None

    real = guard_module.run_password_check

    async def counting(function: Any, *args: Any) -> Any:
        hops.append(function)
        return await real(function, *args)

    monkeypatch.setattr(guard_module, "run_password_check", counting)
    guard = Guard(AccessControl(None, True), "r", [PasswordMethod("htpasswd", check, quick)])

    async def identify_twice() -> None:
        for _ in range(2):
            identity = await guard.identify(_basic("alice", "pw"))
            assert identity.user == "alice" and identity.method == "htpasswd"

    asyncio.run(identify_twice())
    assert hops == [check]  # the first request only


def test_an_inline_method_never_goes_to_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_threads(*_: Any) -> Any:
        raise AssertionError("went to a thread")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    keys = PasswordMethod("apikey", lambda u, p: [] if p == "zak_x" else None, runs="loop")
    guard = Guard(AccessControl(None, True), "r", [keys])
    identity = asyncio.run(guard.identify(_basic("alice", "zak_x")))
    assert identity.method == "apikey"


@pytest.mark.parametrize("shared", [False, True])
def test_api_keys_are_checked_on_database_threads_only_on_a_shared_meta_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared: bool
) -> None:
    """A key's lookup is an indexed read of the local SQLite file, made on the event loop;
    on a meta DB that instances share (PostgreSQL: a round trip over the network) it is made
    on the database's own threads, so a slow database holds up that request only. A password
    that is not a key is never looked up."""
    hops: list[Any] = []
    real = guard_module.run_database_work

    async def counting(remote: bool, function: Any, *args: Any) -> Any:
        hops.append(function)
        return await real(remote, function, *args)

    monkeypatch.setattr(guard_module, "run_database_work", counting)
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "secret"})
    config = Config.model_validate(
        {
            "storage": {"rootDirectory": str(tmp_path / "data")},
            "http": {"auth": {"htpasswd": {"path": str(htpasswd)}, "apikey": True}},
        }
    )
    meta = SQLiteMetaDB(tmp_path / "meta.db")
    monkeypatch.setattr(meta, "shared_by_instances", shared)
    try:
        guard = build_guard(config, meta)
        assert guard is not None and guard.api_keys is not None
        key, _ = guard.api_keys.create("alice", (), "test", (), None, "pytest")
        identity = asyncio.run(guard.identify(_basic("alice", key)))
        assert identity.method == "apikey"
        assert len(hops) == (1 if shared else 0)
        identity = asyncio.run(guard.identify(_basic("alice", "secret")))
        assert identity.method == "htpasswd"
        assert len(hops) == (1 if shared else 0)  # the key method was skipped
    finally:
        meta.close()
