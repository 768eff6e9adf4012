"""The guard's authentication path: what runs on the event loop and what goes to a thread."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from ocireg.auth.guard import Guard, PasswordMethod
from ocireg.auth.policy import AccessControl


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

    real = asyncio.to_thread

    async def counting(function: Any, *args: Any) -> Any:
        hops.append(function)
        return await real(function, *args)

    monkeypatch.setattr(asyncio, "to_thread", counting)
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
    keys = PasswordMethod("apikey", lambda u, p: [] if p == "zak_x" else None, inline=True)
    guard = Guard(AccessControl(None, True), "r", [keys])
    identity = asyncio.run(guard.identify(_basic("alice", "zak_x")))
    assert identity.method == "apikey"
