"""The meta DB on PostgreSQL (``storage.cacheDriver: {name: postgres, url}``): one database
that several instances share, running the same SQL as SQLite (``ocireg.meta.db``).

What differs from the SQLite backend:

- the schema's types (``DOUBLE PRECISION`` for times: PostgreSQL's ``REAL`` has 4 bytes;
  ``BIGINT`` for sizes), the triggers (PL/pgSQL), ``COLLATE "C"`` on names so that the catalog
  is in byte order whatever the database's locale, and an ``instr`` function for the shared SQL;
- placeholders: the shared SQL's ``?`` become psycopg's ``%s`` (:func:`to_pyformat`);
- :meth:`generation`: a counter row that every write transaction bumps before it commits, so a
  reader that reads the counter before its data can never pair a new counter with old data;
- one connection per instance in autocommit mode, each write in an explicit transaction, and a
  read-only session (``default_transaction_read_only``) for the search process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocireg.meta.db import (
    _RECORD_ERRORS,
    FIRST_LAYER_INDEX,
    SCHEMA_VERSION,
    NoSuchTable,
    SQLMetaDB,
)
from ocireg.meta.pgconnect import connect

if TYPE_CHECKING:
    import psycopg

# Taken once per database by whichever instance creates or migrates the schema: concurrent
# CREATE ... IF NOT EXISTS race in PostgreSQL's catalogs. The value is arbitrary but fixed.
_SCHEMA_LOCK = 0x6F63697265670001

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS repos (
    name TEXT COLLATE "C" PRIMARY KEY, stamp TEXT, updated DOUBLE PRECISION,
    version BIGINT NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS images (
    repo TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL, media_type TEXT,
    size BIGINT, artifact_type TEXT, config_digest TEXT, subject TEXT, annotations TEXT,
    labels TEXT, platforms TEXT, layers TEXT, children TEXT, created TEXT, content_size BIGINT,
    signature TEXT, pushed_at DOUBLE PRECISION, pushed_by TEXT,
    downloads BIGINT NOT NULL DEFAULT 0, last_pull DOUBLE PRECISION, layer_sizes TEXT,
    history TEXT, first_layer TEXT, PRIMARY KEY (repo, digest));
CREATE INDEX IF NOT EXISTS images_by_subject ON images (repo, subject);
CREATE TABLE IF NOT EXISTS tags (
    repo TEXT COLLATE "C" NOT NULL, tag TEXT COLLATE "C" NOT NULL, digest TEXT NOT NULL,
    tagged_at DOUBLE PRECISION, PRIMARY KEY (repo, tag));
CREATE TABLE IF NOT EXISTS user_prefs (
    "user" TEXT NOT NULL, repo TEXT COLLATE "C" NOT NULL, starred INTEGER NOT NULL DEFAULT 0,
    bookmarked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY ("user", repo));
CREATE TABLE IF NOT EXISTS api_keys (
    seq BIGSERIAL, hash TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, "user" TEXT NOT NULL,
    details TEXT NOT NULL, last_used DOUBLE PRECISION);
CREATE INDEX IF NOT EXISTS api_keys_by_user ON api_keys ("user");
CREATE TABLE IF NOT EXISTS catalog (name TEXT COLLATE "C" PRIMARY KEY);
CREATE TABLE IF NOT EXISTS generation (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), n BIGINT NOT NULL);
INSERT INTO generation (one, n) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER
    LANGUAGE SQL IMMUTABLE AS 'SELECT strpos(haystack, needle)';
CREATE OR REPLACE FUNCTION repos_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO repos (name, version)
    VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.repo ELSE NEW.repo END, 1)
    ON CONFLICT (name) DO UPDATE SET version = repos.version + 1;
    RETURN NULL;
END $$;
"""

# Every change to a repository's rows bumps its version (as SQLite's triggers do)
_VERSION_TRIGGERS = "".join(
    f"CREATE OR REPLACE TRIGGER {table}_bumps AFTER INSERT OR UPDATE OR DELETE ON {table} "
    "FOR EACH ROW EXECUTE FUNCTION repos_bump_version();\n"
    for table in ("images", "tags", "user_prefs")
)


def to_pyformat(sql: str) -> str:
    """The shared SQL's ``?`` placeholders as psycopg's ``%s``, leaving quoted text and
    identifiers alone; a ``%`` anywhere is doubled, since psycopg reads it even in quotes."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        if char == "%":
            out.append("%%")
            continue
        out.append(char)
    return "".join(out)


class Row(tuple[Any, ...]):
    """A row read by position or by column name, like ``sqlite3.Row`` (``dict(row)`` works)."""

    _names: dict[str, int]

    def __new__(cls, names: dict[str, int], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def keys(self) -> list[str]:
        return list(self._names)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)


def _row_factory(cursor: Any) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(names, values)


class Transaction:
    """The shared SQL's view of a PostgreSQL transaction (what ``sqlite3.Connection`` offers)."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        if not parameters:  # psycopg reads placeholders (and %%) only when given parameters
            return self._connection.execute(sql)
        return self._connection.execute(to_pyformat(sql), parameters)

    def executemany(self, sql: str, parameters: Any) -> Any:
        cursor = self._connection.cursor()
        rows = list(parameters)
        if rows:
            cursor.executemany(to_pyformat(sql), rows)
        return cursor

    def executescript(self, sql: str) -> Any:
        # Scripts are schema (CREATE ... IF NOT EXISTS: the meta DB's, browser sessions',
        # extensions' tables), which race in PostgreSQL's catalogs when several workers or
        # instances start at once: one script at a time per database, until the commit.
        self._connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        return self._connection.execute(sql)  # no parameters: several statements may run


def _record_errors() -> tuple[type[Exception], ...]:
    import psycopg

    # NUL in a string, a number out of range: the value's fault, not the database's
    return (*_RECORD_ERRORS, psycopg.DataError)


def _add_first_layer(db: Transaction) -> None:
    """A database from before ``first_layer`` gets it, filled from the layer lists it holds
    (as SQLite's is), and its index."""
    columns = db.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'images'"
    ).fetchall()
    if "first_layer" not in {row[0] for row in columns}:
        db.execute("ALTER TABLE images ADD COLUMN first_layer TEXT")
        db.execute("UPDATE images SET first_layer = layers::json->>0 WHERE layers IS NOT NULL")
    db.execute(FIRST_LAYER_INDEX)


class PostgresMetaDB(SQLMetaDB):
    """The meta DB in a PostgreSQL database (``url``: a libpq URL or connection string)."""

    _key_order = "seq"
    shared_by_instances = True
    engine = "postgres"

    def __init__(self, url: str, *, read_only: bool = False, side_file: Path | None = None) -> None:
        import psycopg

        self.url = url
        self.path = side_file
        self.read_only = read_only
        self.errors = (psycopg.Error,)
        self._record_errors = _record_errors()
        self._lock = threading.Lock()
        self._catalog_built = read_only  # a reader takes the catalog as its keeper built it
        self._db = self._connect()
        if not read_only:
            self._create_schema()

    @classmethod
    def reader(cls, url: str) -> PostgresMetaDB:
        """A session that only reads (search's own process): PostgreSQL refuses any write."""
        return cls(url, read_only=True)

    def _connect(self) -> psycopg.Connection[Any]:
        options = "-c default_transaction_read_only=on" if self.read_only else ""
        connection: psycopg.Connection[Any] = connect(
            self.url, autocommit=True, row_factory=_row_factory, options=options,
            application_name="ocireg",
        )  # fmt: skip
        return connection

    def _connection(self) -> psycopg.Connection[Any]:
        """The connection, opened again when the server dropped the last one (a restart)."""
        if self._db.closed or self._db.broken:
            self._db = self._connect()
        return self._db

    def _create_schema(self) -> None:
        with self._write() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            db.executescript(_SCHEMA + _VERSION_TRIGGERS)
            _add_first_layer(db)
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?) ON CONFLICT DO NOTHING",
                (SCHEMA_VERSION,),
            )

    @contextmanager
    def _write(self) -> Iterator[Transaction]:
        with self._lock:
            connection = self._connection()
            with connection.transaction():
                yield Transaction(connection)
                if not self.read_only:  # last, so the row is locked only until the commit
                    connection.execute("UPDATE generation SET n = n + 1")

    def _read(self, query: str, *args: Any) -> list[Any]:
        with self._lock:
            rows: list[Any] = Transaction(self._connection()).execute(query, args).fetchall()
            return rows

    def reader_source(self) -> str:
        return self.url

    def generation(self) -> object | None:
        rows = self._read("SELECT n FROM generation")
        return rows[0][0] if rows else None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def extension_read(self, query: str, *args: Any) -> list[Any]:
        import psycopg

        try:
            return self._read(query, *args)
        except psycopg.errors.UndefinedTable as exc:
            raise NoSuchTable(str(exc)) from exc

    def extension_write(self) -> AbstractContextManager[Transaction]:
        return self._write()
