"""Every meta DB test runs on both backends: SQLite (a file of the test's own) and PostgreSQL
(a database of the test's own in the session's throwaway cluster, see tests/postgres.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocireg.meta.db import MetaDB, SQLiteMetaDB
from tests.postgres import Postgres, postgres

__all__ = ["postgres"]  # the session fixture, used here by name


@dataclass
class Backend:
    """Connections to one test's meta DB: each ``open()`` sees what the others wrote."""

    name: str
    _open: Callable[[], MetaDB]
    _reader: Callable[[], MetaDB]
    opened: list[MetaDB] = field(default_factory=list)

    def open(self) -> MetaDB:
        self.opened.append(self._open())
        return self.opened[-1]

    def reader(self) -> MetaDB:
        self.opened.append(self._reader())
        return self.opened[-1]


def _sqlite(path: Path) -> Backend:
    return Backend("sqlite", lambda: SQLiteMetaDB(path), lambda: SQLiteMetaDB.reader(path))


def _postgres(server: Postgres) -> Backend:
    from ocireg.meta.postgres import PostgresMetaDB

    url = server.new_database()
    return Backend("postgres", lambda: PostgresMetaDB(url), lambda: PostgresMetaDB.reader(url))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        made = _sqlite(tmp_path / "meta.db")
    else:
        made = _postgres(request.getfixturevalue("postgres"))
    yield made
    for db in made.opened:
        db.close()


@pytest.fixture
def meta(backend: Backend) -> MetaDB:
    """A fresh, empty meta DB on each backend."""
    return backend.open()
