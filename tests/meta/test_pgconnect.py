"""ocireg's connections to PostgreSQL carry TCP keepalives (a server gone without a word ends
the query waiting on it), and what the operator's URL says wins."""

from __future__ import annotations

from typing import Any

import pytest

from ocireg.meta.pgconnect import DEFAULTS, connect, defaults_for
from ocireg.meta.postgres import PostgresMetaDB
from ocireg.registry.sharedlocks import AdvisoryLocks
from tests.postgres import Postgres, postgres

__all__ = ["postgres"]  # the session fixture, used here by name


def _settings(connection: Any) -> dict[str, str]:
    parameters: dict[str, str] = connection.info.get_parameters()
    return {key: parameters.get(key, "") for key in DEFAULTS}


def test_every_connection_has_keepalives(postgres: Postgres) -> None:
    url = postgres.new_database()
    meta = PostgresMetaDB(url)
    locks = AdvisoryLocks(url)
    try:
        with locks.borrowed() as borrowed:
            for connection in (meta._connection(), borrowed):
                assert _settings(connection) == DEFAULTS
    finally:
        meta.close()
        locks.close()


def test_the_url_wins(postgres: Postgres) -> None:
    url = postgres.new_database() + "?keepalives_idle=42&connect_timeout=3"
    with connect(url) as connection:
        settings = _settings(connection)
    assert settings == {**DEFAULTS, "keepalives_idle": "42", "connect_timeout": "3"}


def test_a_service_and_the_environment_win(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://ocireg@db.internal/registry"
    assert defaults_for(url) == DEFAULTS
    assert defaults_for("service=registry") == {}
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "4")
    assert "connect_timeout" not in defaults_for(url)
    monkeypatch.setenv("PGSERVICE", "registry")
    assert defaults_for(url) == {}
