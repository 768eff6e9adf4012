"""The session store (ocireg.auth.sessions) where it keeps sessions: the meta DB's SQLite file
through a connection of its own, and a PostgreSQL meta DB that instances share, where a store
of another instance sees the same sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocireg.auth.sessionkeys import SessionKeys
from ocireg.auth.sessions import LIFETIME, SessionStore
from ocireg.meta.db import MetaDB, SQLiteMetaDB
from tests.postgres import Postgres, postgres

__all__ = ["postgres"]  # the session fixture, used here by name


@pytest.fixture(params=["sqlite", "postgres"])
def two_metas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[MetaDB, MetaDB]]:
    """Two connections to one meta DB (two processes on one file, or two instances)."""
    if request.param == "sqlite":
        pair: tuple[MetaDB, MetaDB] = (
            SQLiteMetaDB(tmp_path / "meta.db"),
            SQLiteMetaDB(tmp_path / "meta.db"),
        )
    else:
        from ocireg.meta.postgres import PostgresMetaDB

        server: Postgres = request.getfixturevalue("postgres")
        url = server.new_database()
        pair = (PostgresMetaDB(url), PostgresMetaDB(url))
    yield pair
    for meta in pair:
        meta.close()


def test_a_session_made_through_one_store_is_read_and_ended_through_the_other(
    two_metas: tuple[MetaDB, MetaDB],
) -> None:
    clock = [1_764_000_000.5]
    keys = SessionKeys(b"k" * 32, ())
    one, two = (SessionStore.of(meta, keys, lambda: clock[0]) for meta in two_metas)
    cookie, made = one.create("ann", "htpasswd", ("devs", "ops"))
    found = two.get(cookie)
    assert found == made and found.user == "ann" and found.groups == ("devs", "ops")
    assert found.expires == 1_764_000_000.5 + LIFETIME  # 8-byte times on both backends
    assert two.get(cookie + "x") is None and two.get(None) is None
    two.delete(cookie)
    assert one.get(cookie) is None
    # an OpenID login begun on one comes back to the other, once
    pending = one.start_pending({"state": "s", "nonce": "n"})
    assert two.take_pending(pending) == {"state": "s", "nonce": "n"}
    assert one.take_pending(pending) is None
    cookie, _ = one.create("bob", "ldap", ())
    clock[0] += LIFETIME + 1
    assert two.get(cookie) is None  # expired
    for store in (one, two):
        store.close()
    assert two_metas[1].repositories() == []  # a store closes nothing it shares


def test_find_asks_the_shared_database_off_the_loop_and_only_for_a_cookie_that_can_open(
    two_metas: tuple[MetaDB, MetaDB], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocireg.auth import sessions as sessions_module

    asked: list[bool] = []
    real = sessions_module.run_database_work

    async def counting(remote: bool, call: Any, *args: Any) -> Any:
        asked.append(remote)
        return await real(remote, call, *args)

    monkeypatch.setattr(sessions_module, "run_database_work", counting)
    keys = SessionKeys(b"k" * 32, ())
    store = SessionStore.of(two_metas[0], keys)
    cookie, made = store.create("ann", "htpasswd", ())

    async def found() -> list[Any]:
        return [await store.find(each) for each in (cookie, None, cookie + "x", "y" * 300)]

    assert asyncio.run(found()) == [made, None, None, None]
    # one lookup, of the cookie that could open a session: on a thread on PostgreSQL
    assert asked == [two_metas[0].shared_by_instances]
    store.close()
