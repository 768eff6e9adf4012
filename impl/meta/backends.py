"""Which meta DB a configuration asks for: SQLite in ``<root>/.ocireg/meta.db`` (the embedded
default; in memory without a root), or PostgreSQL with ``storage.cacheDriver.name: postgres``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ocireg.meta.db import MetaDB, SQLiteMetaDB

if TYPE_CHECKING:  # not imported at run time: search's process opens a reader only
    from ocireg.config import Config


def open_meta(config: Config, shared: Path | None) -> MetaDB:
    """The meta DB (``shared``: the ``.ocireg`` directory, None without a storage root)."""
    local = shared / "meta.db" if shared else None
    postgres = config.storage.postgres()
    if postgres is not None:
        from ocireg.meta.postgres import PostgresMetaDB

        # extensions that keep their own SQLite tables keep them in the local file still
        return PostgresMetaDB(postgres.url, side_file=local)
    return SQLiteMetaDB(local if local else ":memory:")


def open_reader(source: Path | str) -> MetaDB:
    """A read-only connection to the meta DB another process keeps (``MetaDB.reader_source``)."""
    if isinstance(source, Path):
        return SQLiteMetaDB.reader(source)
    from ocireg.meta.postgres import PostgresMetaDB

    return PostgresMetaDB.reader(source)


def check_reachable(config: Config) -> str | None:
    """For ``ocireg verify``: why the configured PostgreSQL meta DB cannot be reached (None: it
    can, or none is configured). It connects and closes; it creates nothing."""
    postgres = config.storage.postgres()
    if postgres is None:
        return None
    import psycopg

    try:
        with psycopg.connect(postgres.url, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"storage.cacheDriver.url: cannot connect: {str(exc).strip().splitlines()[0]}"
    return None
