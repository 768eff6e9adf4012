"""The meta DB interface, the SQL both backends share, and the SQLite backend (the embedded
default); ``ocireg.meta.postgres`` is the PostgreSQL one, for several instances sharing storage.

The shared SQL is written once, with ``?`` placeholders, in the dialect both engines speak
(``ON CONFLICT``, ``CASE``, a quoted ``"user"``); each backend runs it through its connection.
Everything here is derived from storage and can be rebuilt from it (see ``ocireg.meta.sync``);
only statistics (downloads, last pull, push time and pusher), user preferences (stars,
bookmarks) and API keys (their hashes) exist nowhere else.
"""

from __future__ import annotations

import fcntl
import json
import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ocireg.meta.records import ApiKey, ImageRecord, Platform
from ocireg.registry.offloop import run_database_work

log = logging.getLogger("ocireg.meta")
T = TypeVar("T")
SCHEMA_VERSION = "1"
_JSON_FIELDS = (
    "annotations",
    "labels",
    "platforms",
    "layers",
    "children",
    "layer_sizes",
    "history",
)
# Columns added after the first release: a DB without them gets them, and every repository is
# read again from storage at the next sync (its stamp is cleared), since rows lack their values.
_ADDED_IMAGE_COLUMNS = ("layer_sizes", "history")


class Connection(Protocol):
    """What a write transaction offers (to an extension's statements, and the shared SQL): the
    part of ``sqlite3.Connection`` that the PostgreSQL backend offers as well."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Any, /) -> Any: ...

    def executescript(self, sql: str, /) -> Any: ...


class NoSuchTable(LookupError):
    """An extension's query named a table that does not exist (its extension never ran)."""


class MetaDB(ABC):
    # the SQLite file where extensions that open their own connection keep their tables (the
    # meta DB itself, or with PostgreSQL a local file beside); None: they keep them in memory
    path: Path | None = None
    # what the backend raises when it cannot serve (locked, down, full): callers that can go
    # on without the meta DB (the next sync repairs it) catch these
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    # whether several instances (machines) share this database: state they must all see
    # (browser sessions, upload sessions) then lives in it rather than beside it
    shared_by_instances = False
    # the SQL engine, for the few queries the two engines spell differently (JSON arrays)
    engine = "sqlite"

    async def asked(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)``, work that asks this database, from the event loop: here when it
        is the local SQLite file (an indexed statement, quicker than a thread hop), on a
        database thread when it is across the network (``shared_by_instances``), so a slow
        or silent server holds up only the requests that wait for it; awaited to its end
        even when the request is cancelled (see :mod:`ocireg.registry.offloop`)."""
        return await run_database_work(self.shared_by_instances, call, *args)

    @abstractmethod
    def put_image(
        self, repo: str, record: ImageRecord, tags: list[str], when: float, who: str
    ) -> None:
        """A manifest was pushed (and tagged with ``tags``)."""

    @abstractmethod
    def remove_tag(self, repo: str, tag: str) -> None: ...

    @abstractmethod
    def remove_image(self, repo: str, digest: str) -> None: ...

    @abstractmethod
    def add_pulls(self, pulls: dict[tuple[str, str], tuple[int, float]]) -> None:
        """Add download counts and last-pull times, batched: (repo, digest) -> (n, when)."""

    @abstractmethod
    def stamp(self, repo: str) -> str | None:
        """What the repository's index.json was when last synchronised."""

    @abstractmethod
    def advance_stamp(self, repo: str, before: str | None, after: str) -> None:
        """Record that the DB follows index.json from ``before`` to ``after``; nothing
        happens unless the DB's stamp is ``before``."""

    @abstractmethod
    def replace_repository(
        self,
        repo: str,
        records: list[ImageRecord],
        tags: dict[str, str],
        stamp: str | None,
        when: float,
    ) -> dict[str, str]:
        """Make a repository's rows equal to storage, keeping known statistics. A record the
        DB cannot hold is left out (with its tags, and the stamp is not set, so the next
        start tries again) rather than failing the others: returns digest -> why."""

    @abstractmethod
    def drop_repository(self, repo: str) -> None: ...

    @abstractmethod
    def repositories(self) -> list[str]: ...

    # The catalog: every repository in storage, listed as soon as its creation is answered
    # (``add_repository`` is called synchronously), and made equal to storage by each sync.
    @abstractmethod
    def add_repository(self, repo: str) -> None: ...

    @abstractmethod
    def remove_repository(self, repo: str) -> None:
        """A repository gone from storage (GC removed it, empty): out of the catalog, and its
        rows dropped."""

    @abstractmethod
    def set_catalog(self, present: list[str], gone: list[str]) -> None:
        """Bring the catalog to storage after a walk: add ``present``, remove ``gone`` (listed
        but not in storage any more), and mark it built."""

    @abstractmethod
    def catalog_built(self) -> bool:
        """Whether a sync has built the catalog once (a new DB has not)."""

    @abstractmethod
    def catalog(self, after: str | None = None, limit: int | None = None) -> list[str]:
        """Repository names after ``after`` (exclusive), in lexical order, at most ``limit``."""

    @abstractmethod
    def tags(self, repo: str) -> dict[str, str]: ...

    @abstractmethod
    def tag_digest(self, repo: str, tag: str) -> str | None:
        """The digest ``tag`` points at, None when the repository has no such tag."""

    @abstractmethod
    def versions(self) -> dict[str, int]:
        """Each repository's version: it changes whenever anything about the repository does."""

    def reader_source(self) -> Path | str | None:
        """What another process opens to read this meta DB (``backends.open_reader``): the
        SQLite file, or PostgreSQL's URL; None: it lives in this process's memory."""
        return self.path

    def generation(self) -> object | None:
        """A token that changes whenever anything is written, by any process: what a reader
        compares to know that nothing it derived is stale. None: not known, assume changed."""
        return None

    @abstractmethod
    def tagged(self, repo: str) -> list[tuple[str, str, float | None]]:
        """(tag, digest, when tagged) of a repository, by tag."""

    @abstractmethod
    def image(self, repo: str, digest: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def images(self, repo: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    def referrers(self, repo: str, subject: str) -> list[dict[str, Any]]:
        """Manifests of ``repo`` whose subject is ``subject``."""

    def images_of(self, repo: str, digests: Collection[str]) -> dict[str, dict[str, Any]]:
        """The rows of those of ``digests`` the DB holds, by digest (one lookup each here; a
        backend may answer in one query)."""
        rows = {digest: self.image(repo, digest) for digest in set(digests)}
        return {digest: row for digest, row in rows.items() if row is not None}

    def referrers_of(self, repo: str, subjects: Collection[str]) -> dict[str, list[dict[str, Any]]]:
        """``referrers`` of each of ``subjects`` (by digest, as ``referrers`` orders them)."""
        return {subject: self.referrers(repo, subject) for subject in set(subjects)}

    def tagged_starting_with(self, layer: str) -> list[tuple[str, str]]:
        """(repo, tag) of every tag whose image's first layer is ``layer``: the only images
        that can be another's base or dependent (search's BaseImageList, DerivedImageList)."""
        found = []
        for repo in self.repositories():
            for tag, digest in self.tags(repo).items():
                row = self.image(repo, digest)
                if row is not None and list(row["layers"])[:1] == [layer]:
                    found.append((repo, tag))
        return found

    @abstractmethod
    def blob_users(self, repo: str, blob: str) -> tuple[set[str], list[str]]:
        """(every manifest of ``repo`` the DB holds, those whose config or a layer is
        ``blob``): the registry's reference index for blob deletes."""

    @abstractmethod
    def preferences(self, user: str) -> dict[str, tuple[bool, bool]]:
        """A user's repositories: (starred, bookmarked)."""

    @abstractmethod
    def star_counts(self) -> dict[str, int]: ...

    @abstractmethod
    def toggle(self, user: str, repo: str, preference: str) -> bool:
        """Flip ``starred`` or ``bookmarked`` for a user's repository; returns the new value."""

    @abstractmethod
    def add_api_key(self, key_hash: str, key: ApiKey) -> None: ...

    @abstractmethod
    def api_keys(self, user: str) -> list[ApiKey]: ...

    @abstractmethod
    def api_key(self, key_hash: str) -> ApiKey | None: ...

    @abstractmethod
    def revoke_api_key(self, user: str, uuid: str) -> bool:
        """Delete one of ``user``'s keys; whether there was one."""

    @abstractmethod
    def used_api_key(self, key_hash: str, when: float) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    # -- extension tables (their own SQL, their names prefixed with the extension's) --------
    # Extensions write SQL that both backends run: ``?`` placeholders, ``ON CONFLICT`` rather
    # than ``INSERT OR ...``, ``DOUBLE PRECISION`` (PostgreSQL's ``REAL`` has 4 bytes), ``BIGINT``.
    def extension_read(self, query: str, *args: Any) -> list[Any]:
        """Rows (indexable by column name and position) of a query over an extension's
        tables; :class:`NoSuchTable` when it names a table that does not exist."""
        raise NotImplementedError(f"{type(self).__name__} keeps no extension tables")

    def extension_write(self) -> AbstractContextManager[Connection]:
        """A transaction for an extension's statements (committed when the block ends)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no extension tables")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS repos (
    name TEXT PRIMARY KEY, stamp TEXT, updated REAL, version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS images (
    repo TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT, size INTEGER,
    artifact_type TEXT, config_digest TEXT, subject TEXT, annotations TEXT, labels TEXT,
    platforms TEXT, layers TEXT, children TEXT, created TEXT, content_size INTEGER,
    signature TEXT, pushed_at REAL, pushed_by TEXT, downloads INTEGER NOT NULL DEFAULT 0,
    last_pull REAL, layer_sizes TEXT, history TEXT, first_layer TEXT, PRIMARY KEY (repo, digest));
CREATE INDEX IF NOT EXISTS images_by_subject ON images (repo, subject);
CREATE TABLE IF NOT EXISTS tags (
    repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, tagged_at REAL,
    PRIMARY KEY (repo, tag));
CREATE TABLE IF NOT EXISTS user_prefs (
    "user" TEXT NOT NULL, repo TEXT NOT NULL, starred INTEGER NOT NULL DEFAULT 0,
    bookmarked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY ("user", repo));
CREATE TABLE IF NOT EXISTS api_keys (
    hash TEXT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, "user" TEXT NOT NULL, details TEXT NOT NULL,
    last_used REAL);
CREATE INDEX IF NOT EXISTS api_keys_by_user ON api_keys ("user");
CREATE TABLE IF NOT EXISTS catalog (name TEXT PRIMARY KEY) WITHOUT ROWID;
"""

# Every change to a repository's rows bumps its version, so readers (search) can keep derived
# figures per repository and recompute only what changed, whichever process wrote.
_VERSION_TRIGGERS = "".join(
    f"""
CREATE TRIGGER IF NOT EXISTS {table}_{event.lower()}_bumps AFTER {event} ON {table} BEGIN
    INSERT INTO repos (name, version) VALUES ({row}.repo, 1)
    ON CONFLICT (name) DO UPDATE SET version = repos.version + 1;
END;"""
    for table in ("images", "tags", "user_prefs")
    for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
)

_IMAGE_COLUMNS = (
    "repo, digest, media_type, size, artifact_type, config_digest, subject, annotations, "
    "labels, platforms, layers, children, created, content_size, signature, layer_sizes, history, "
    "first_layer"
)
# Images that can be another's base or dependent share their first layer: an indexed column
# finds them (search's BaseImageList and DerivedImageList) without decoding every layer list.
# Created after the column exists (a DB from before it gets the column first).
FIRST_LAYER_INDEX = "CREATE INDEX IF NOT EXISTS images_by_first_layer ON images (first_layer)"


# What binding a record's values can raise when they are the record's fault.
_RECORD_ERRORS = (
    OverflowError,
    ValueError,  # UnicodeEncodeError among them
    TypeError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
)


_CHUNK = 500  # digests per IN list: far below SQLite's limit on a statement's parameters


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


_INT64 = range(-(2**63), 2**63)


def _checked(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row, or OverflowError for an integer no backend's 64-bit column holds (each would
    fail in its own words; the reason a record is left out should not depend on the backend)."""
    for value in row:
        if isinstance(value, int) and value not in _INT64:
            raise OverflowError(f"integer {value} does not fit in 64 bits")
    return row


def _image_row(repo: str, record: ImageRecord) -> tuple[Any, ...]:
    values = asdict(record)
    encoded = {name: json.dumps(values[name], separators=(",", ":")) for name in _JSON_FIELDS}
    return (
        repo, record.digest, record.media_type, record.size, record.artifact_type,
        record.config_digest, record.subject, encoded["annotations"], encoded["labels"],
        encoded["platforms"], encoded["layers"], encoded["children"], record.created,
        record.content_size, record.signature, encoded["layer_sizes"], encoded["history"],
        record.layers[0] if record.layers else None,
    )  # fmt: skip


# Columns as long as an image's layer list (28,000 digests is 2 MB of JSON): not even read
# with the rest of a row, but fetched (and decoded) when a reader asks for one, since most
# readers (search's lists and counts) never do, and a search over many such images would
# otherwise hold every list at once.
_BULKY_FIELDS = frozenset({"layers", "layer_sizes", "history"})
_LIGHT_COLUMNS = (
    "repo, digest, media_type, size, artifact_type, config_digest, subject, annotations, "
    "labels, platforms, children, created, content_size, signature, pushed_at, pushed_by, "
    "downloads, last_pull"
)


class ImageRow(dict[str, Any]):
    """An image row: a dict whose bulky JSON columns are fetched and decoded on first access.
    An image's bulky columns never change (its digest names its content); one deleted in the
    meantime reads as empty lists."""

    def __init__(self, values: dict[str, Any], fetch: Callable[[str], str | None]) -> None:
        super().__init__(values)
        self._fetch = fetch
        self._keep_bulky = True

    def __missing__(self, key: str) -> Any:
        if key not in _BULKY_FIELDS:
            raise KeyError(key)
        text = self.encoded(key)
        value = json.loads(text) if text is not None else None
        if self._keep_bulky:
            self[key] = value
        return value

    def forget_bulky(self) -> None:
        """Decode the bulky columns on each access from now on, keeping none: for a row that
        outlives its query (search's kept summaries), which must not hold a 2 MB list."""
        self._keep_bulky = False
        for key in _BULKY_FIELDS:
            self.pop(key, None)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or key in _BULKY_FIELDS

    def encoded(self, key: str) -> str | None:
        """A bulky column's JSON text, read now and not kept (None: the column is empty)."""
        return self._fetch(key)


def _decode(row: Any, fetch: Callable[[str], str | None]) -> ImageRow:
    values = dict(row)
    for name in _JSON_FIELDS:
        if name not in _BULKY_FIELDS and values.get(name) is not None:
            values[name] = json.loads(values[name])
    values["platforms"] = [Platform(**p) for p in values.get("platforms") or []]
    return ImageRow(values, fetch)


def _add_image_columns(db: sqlite3.Connection) -> None:
    present = {row[1] for row in db.execute("PRAGMA table_info(images)")}
    missing = [column for column in _ADDED_IMAGE_COLUMNS if column not in present]
    for column in missing:
        db.execute(f"ALTER TABLE images ADD COLUMN {column} TEXT")
    if missing:
        db.execute("UPDATE repos SET stamp = NULL")


def _add_first_layer(db: sqlite3.Connection) -> None:
    """A DB from before ``first_layer`` gets it, filled from the layer lists it holds (no
    repository needs reading again), and its index."""
    present = {row[1] for row in db.execute("PRAGMA table_info(images)")}
    if "first_layer" not in present:
        db.execute("ALTER TABLE images ADD COLUMN first_layer TEXT")
        db.execute("UPDATE images SET first_layer = json_extract(layers, '$[0]')")
    db.execute(FIRST_LAYER_INDEX)


def _connect(where: str) -> sqlite3.Connection:
    db = sqlite3.connect(where, check_same_thread=False, timeout=30)
    db.row_factory = sqlite3.Row
    return db


def _remove_journal(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


class SQLMetaDB(MetaDB):
    """The queries both backends share; a backend supplies the connection, the transactions
    and what differs (how it orders API keys, which errors are a record's fault)."""

    _key_order = "rowid"  # API keys, in the order they were added
    _catalog_built: bool
    _record_errors: tuple[type[Exception], ...] = _RECORD_ERRORS

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """A transaction (committed when the block ends, rolled back on an error)."""

    @abstractmethod
    def _read(self, query: str, *args: Any) -> list[Any]: ...

    def _begin(self, db: Any) -> None:
        """Make sure a transaction is open (savepoints nest in it)."""

    # -- updates --------------------------------------------------------------------------
    def put_image(
        self, repo: str, record: ImageRecord, tags: list[str], when: float, who: str
    ) -> None:
        with self._write() as db:
            self._upsert_image(db, repo, record)
            db.execute(
                "UPDATE images SET pushed_at = COALESCE(pushed_at, ?), pushed_by = ? "
                "WHERE repo = ? AND digest = ?",
                (when, who, repo, record.digest),
            )
            for tag in tags:
                db.execute(
                    "INSERT INTO tags (repo, tag, digest, tagged_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (repo, tag) DO UPDATE SET digest = excluded.digest, "
                    "tagged_at = excluded.tagged_at WHERE tags.digest != excluded.digest",
                    (repo, tag, record.digest, when),
                )
            db.execute(
                "INSERT INTO repos (name, updated) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET updated = excluded.updated",
                (repo, when),
            )

    @staticmethod
    def _upsert_image(db: Connection, repo: str, record: ImageRecord) -> None:
        placeholders = ", ".join("?" * len(_IMAGE_COLUMNS.split(",")))
        updates = ", ".join(
            f"{c.strip()} = excluded.{c.strip()}" for c in _IMAGE_COLUMNS.split(",")[2:]
        )
        db.execute(
            f"INSERT INTO images ({_IMAGE_COLUMNS}) VALUES ({placeholders}) "
            f"ON CONFLICT (repo, digest) DO UPDATE SET {updates}",
            _checked(_image_row(repo, record)),
        )

    def remove_tag(self, repo: str, tag: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM tags WHERE repo = ? AND tag = ?", (repo, tag))

    def remove_image(self, repo: str, digest: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM images WHERE repo = ? AND digest = ?", (repo, digest))
            db.execute("DELETE FROM tags WHERE repo = ? AND digest = ?", (repo, digest))

    def add_pulls(self, pulls: dict[tuple[str, str], tuple[int, float]]) -> None:
        with self._write() as db:
            db.executemany(
                "UPDATE images SET downloads = downloads + ?, "
                "last_pull = CASE WHEN last_pull IS NULL OR last_pull < ? THEN ? "
                "ELSE last_pull END WHERE repo = ? AND digest = ?",
                [(n, when, when, repo, digest) for (repo, digest), (n, when) in pulls.items()],
            )

    def replace_repository(
        self,
        repo: str,
        records: list[ImageRecord],
        tags: dict[str, str],
        stamp: str | None,
        when: float,
    ) -> dict[str, str]:
        with self._write() as db:
            self._begin(db)  # the savepoints below nest in it
            present = {record.digest for record in records}
            known = {r[0] for r in db.execute("SELECT digest FROM images WHERE repo = ?", (repo,))}
            db.executemany(
                "DELETE FROM images WHERE repo = ? AND digest = ?",
                [(repo, digest) for digest in known - present],
            )
            failed = {}
            for record in records:
                error = self._upsert_isolated(db, repo, record)
                if error is not None:
                    failed[record.digest] = error
            stored = [record for record in records if record.digest not in failed]
            db.executemany(
                "UPDATE images SET pushed_at = ? "
                "WHERE repo = ? AND digest = ? AND pushed_at IS NULL",
                [(record.stored_at or when, repo, record.digest) for record in stored],
            )
            tags = {tag: digest for tag, digest in tags.items() if digest not in failed}
            self._replace_tags(db, repo, tags, when)
            stamp = None if failed else stamp
            db.execute(
                "INSERT INTO repos (name, stamp, updated) VALUES (?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET stamp = excluded.stamp",
                (repo, stamp, when),
            )
        return failed

    @classmethod
    def _upsert_isolated(cls, db: Connection, repo: str, record: ImageRecord) -> str | None:
        """Upsert one record in a savepoint; the reason when the database cannot hold its
        values (an integer beyond int64, a string that is no UTF-8). Other errors (a locked or
        full database) are not the record's fault and fail the whole repository."""
        db.execute("SAVEPOINT record")
        try:
            cls._upsert_image(db, repo, record)
        except cls._record_errors as exc:
            db.execute("ROLLBACK TO record")
            return f"{type(exc).__name__}: {exc}"
        finally:
            db.execute("RELEASE record")
        return None

    @staticmethod
    def _replace_tags(db: Connection, repo: str, tags: dict[str, str], when: float) -> None:
        """Set a repository's tags; a tag that still points where it did keeps its time."""
        old = {
            tag: (digest, tagged_at)
            for tag, digest, tagged_at in db.execute(
                "SELECT tag, digest, tagged_at FROM tags WHERE repo = ?", (repo,)
            )
        }
        db.execute("DELETE FROM tags WHERE repo = ?", (repo,))
        rows = []
        for tag, digest in tags.items():
            before = old.get(tag)
            tagged_at = before[1] if before is not None and before[0] == digest else when
            rows.append((repo, tag, digest, tagged_at))
        db.executemany("INSERT INTO tags (repo, tag, digest, tagged_at) VALUES (?, ?, ?, ?)", rows)

    def advance_stamp(self, repo: str, before: str | None, after: str) -> None:
        with self._write() as db:
            if before is None:
                db.execute(
                    "INSERT INTO repos (name, stamp) VALUES (?, ?) ON CONFLICT (name) "
                    "DO UPDATE SET stamp = excluded.stamp WHERE repos.stamp IS NULL",
                    (repo, after),
                )
            else:
                db.execute(
                    "UPDATE repos SET stamp = ? WHERE name = ? AND stamp = ?", (after, repo, before)
                )

    def drop_repository(self, repo: str) -> None:
        with self._write() as db:
            for table, column in (("images", "repo"), ("tags", "repo"), ("repos", "name")):
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (repo,))

    # -- queries --------------------------------------------------------------------------
    def stamp(self, repo: str) -> str | None:
        rows = self._read("SELECT stamp FROM repos WHERE name = ?", repo)
        return rows[0][0] if rows else None

    def repositories(self) -> list[str]:
        return [row[0] for row in self._read("SELECT name FROM repos ORDER BY name")]

    def add_repository(self, repo: str) -> None:
        with self._write() as db:
            db.execute("INSERT INTO catalog (name) VALUES (?) ON CONFLICT DO NOTHING", (repo,))

    def remove_repository(self, repo: str) -> None:
        self.drop_repository(repo)
        with self._write() as db:
            db.execute("DELETE FROM catalog WHERE name = ?", (repo,))

    def set_catalog(self, present: list[str], gone: list[str]) -> None:
        with self._write() as db:
            db.executemany("DELETE FROM catalog WHERE name = ?", [(r,) for r in gone])
            db.executemany(
                "INSERT INTO catalog (name) VALUES (?) ON CONFLICT DO NOTHING",
                [(r,) for r in present],
            )
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('catalog', 'built') "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            )

    def catalog_built(self) -> bool:
        # once built it stays built (a sync only ever rebuilds it), so ask until it is
        if not self._catalog_built:
            self._catalog_built = bool(self._read("SELECT 1 FROM meta WHERE key = 'catalog'"))
        return self._catalog_built

    def catalog(self, after: str | None = None, limit: int | None = None) -> list[str]:
        query = "SELECT name FROM catalog WHERE name > ? ORDER BY name"
        args: list[Any] = [after or ""]
        if limit is not None:
            query, args = query + " LIMIT ?", [*args, limit]
        rows = self._read(query, *args)
        return [row[0] for row in rows]

    def tags(self, repo: str) -> dict[str, str]:
        rows = self._read("SELECT tag, digest FROM tags WHERE repo = ? ORDER BY tag", repo)
        return {row[0]: row[1] for row in rows}

    def tag_digest(self, repo: str, tag: str) -> str | None:
        rows = self._read("SELECT digest FROM tags WHERE repo = ? AND tag = ?", repo, tag)
        return str(rows[0][0]) if rows else None

    def versions(self) -> dict[str, int]:
        return {row[0]: row[1] for row in self._read("SELECT name, version FROM repos")}

    def tagged(self, repo: str) -> list[tuple[str, str, float | None]]:
        rows = self._read(
            "SELECT tag, digest, tagged_at FROM tags WHERE repo = ? ORDER BY tag", repo
        )
        return [(row[0], row[1], row[2]) for row in rows]

    def image(self, repo: str, digest: str) -> dict[str, Any] | None:
        rows = self._read(
            f"SELECT {_LIGHT_COLUMNS} FROM images WHERE repo = ? AND digest = ?", repo, digest
        )
        return self._row(rows[0]) if rows else None

    def images(self, repo: str) -> list[dict[str, Any]]:
        rows = self._read(f"SELECT {_LIGHT_COLUMNS} FROM images WHERE repo = ? ORDER BY digest",
                          repo)  # fmt: skip
        return [self._row(row) for row in rows]

    def referrers(self, repo: str, subject: str) -> list[dict[str, Any]]:
        rows = self._read(
            f"SELECT {_LIGHT_COLUMNS} FROM images WHERE repo = ? AND subject = ? ORDER BY digest",
            repo,
            subject,
        )
        return [self._row(row) for row in rows]

    def _row(self, row: Any) -> ImageRow:
        repo, digest = row["repo"], row["digest"]

        def fetch(column: str) -> str | None:
            assert column in _BULKY_FIELDS  # a name from our own list, never a caller's text
            found = self._read(
                f"SELECT {column} FROM images WHERE repo = ? AND digest = ?", repo, digest
            )
            return found[0][0] if found else "[]"

        return _decode(row, fetch)

    def images_of(self, repo: str, digests: Collection[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(sorted(set(digests))):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT {_LIGHT_COLUMNS} FROM images WHERE repo = ? AND digest IN ({marks})"
            found.update((row["digest"], self._row(row)) for row in self._read(query, repo, *chunk))
        return found

    def referrers_of(self, repo: str, subjects: Collection[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {subject: [] for subject in subjects}
        for chunk in _chunks(sorted(found)):
            marks = ",".join("?" * len(chunk))
            query = (f"SELECT {_LIGHT_COLUMNS} FROM images WHERE repo = ? AND subject IN ({marks})"
                     " ORDER BY digest")  # fmt: skip
            for row in self._read(query, repo, *chunk):
                found[row["subject"]].append(self._row(row))
        return found

    def tagged_starting_with(self, layer: str) -> list[tuple[str, str]]:
        rows = self._read(
            "SELECT t.repo, t.tag FROM images AS i JOIN tags AS t "
            "ON t.repo = i.repo AND t.digest = i.digest "
            "WHERE i.first_layer = ? ORDER BY t.repo, t.tag",
            layer,
        )
        return [(row[0], row[1]) for row in rows]

    def blob_users(self, repo: str, blob: str) -> tuple[set[str], list[str]]:
        # layers is a JSON array of digest strings: the quoted digest occurs only as one
        rows = self._read(
            "SELECT digest, config_digest = ? OR instr(layers, ?) > 0 FROM images WHERE repo = ?",
            blob,
            json.dumps(blob),
            repo,
        )
        return {row[0] for row in rows}, [row[0] for row in rows if row[1]]

    def preferences(self, user: str) -> dict[str, tuple[bool, bool]]:
        rows = self._read('SELECT repo, starred, bookmarked FROM user_prefs WHERE "user" = ?', user)
        return {row[0]: (bool(row[1]), bool(row[2])) for row in rows}

    def star_counts(self) -> dict[str, int]:
        rows = self._read(
            "SELECT repo, SUM(starred) FROM user_prefs GROUP BY repo HAVING SUM(starred) > 0"
        )
        return {row[0]: int(row[1]) for row in rows}

    def toggle(self, user: str, repo: str, preference: str) -> bool:
        if preference not in ("starred", "bookmarked"):
            raise ValueError(f"unknown preference {preference!r}")
        with self._write() as db:
            db.execute(
                'INSERT INTO user_prefs ("user", repo) VALUES (?, ?) ON CONFLICT DO NOTHING',
                (user, repo),
            )
            db.execute(
                f"UPDATE user_prefs SET {preference} = 1 - {preference} "
                'WHERE "user" = ? AND repo = ?',
                (user, repo),
            )
            row = db.execute(
                f'SELECT {preference} FROM user_prefs WHERE "user" = ? AND repo = ?', (user, repo)
            ).fetchone()
        return bool(row[0])

    # -- API keys (only their hashes are stored) -------------------------------------------
    def add_api_key(self, key_hash: str, key: ApiKey) -> None:
        with self._write() as db:
            db.execute(
                'INSERT INTO api_keys (hash, uuid, "user", details) VALUES (?, ?, ?, ?)',
                (key_hash, key.uuid, key.user, json.dumps(asdict(key))),
            )

    def api_keys(self, user: str) -> list[ApiKey]:
        rows = self._read(
            f'SELECT details, last_used FROM api_keys WHERE "user" = ? ORDER BY {self._key_order}',
            user,
        )
        return [_api_key(row) for row in rows]

    def api_key(self, key_hash: str) -> ApiKey | None:
        rows = self._read("SELECT details, last_used FROM api_keys WHERE hash = ?", key_hash)
        return _api_key(rows[0]) if rows else None

    def revoke_api_key(self, user: str, uuid: str) -> bool:
        with self._write() as db:
            gone = db.execute('DELETE FROM api_keys WHERE "user" = ? AND uuid = ?', (user, uuid))
        return bool(gone.rowcount > 0)

    def used_api_key(self, key_hash: str, when: float) -> None:
        with self._write() as db:
            db.execute("UPDATE api_keys SET last_used = ? WHERE hash = ?", (when, key_hash))


class SQLiteMetaDB(SQLMetaDB):
    """One file (``<root>/.ocireg/meta.db``), WAL mode, shared by worker processes."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self._lock = threading.Lock()
        self._writes = 0  # commits through this connection, which data_version does not count
        self._catalog_built = read_only  # a reader takes the catalog as its keeper built it
        self.path = None if isinstance(path, str) else path  # None: in this process's memory
        if read_only:
            self._db = _connect(str(path))
            self._db.execute("PRAGMA query_only=1")
            return
        if isinstance(path, str):  # ":memory:" (tests, a registry without a root)
            self._db = self._open(path)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # one process at a time decides what to do with what is on disk
        with open(path.with_name(path.name + ".open-lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():  # deleted by hand: its journal files would not match
                _remove_journal(path)
            try:
                self._db = self._open(str(path))
            except sqlite3.DatabaseError as exc:
                # derived data only: set the broken file aside and start again (a sync follows)
                aside = path.with_name(f"{path.name}.broken-{int(time.time())}")
                log.warning("meta DB %s unusable (%s); moved to %s, rebuilding", path, exc, aside)
                path.rename(aside)
                _remove_journal(path)
                self._db = self._open(str(path))

    @classmethod
    def reader(cls, path: Path) -> SQLiteMetaDB:
        """A connection that only reads a meta DB another process keeps (search's own process):
        it neither creates nor migrates anything, and SQLite refuses any write through it."""
        return cls(path, read_only=True)

    def _open(self, where: str) -> sqlite3.Connection:
        db = _connect(where)
        try:
            with db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
                columns = {row[1] for row in db.execute("PRAGMA table_info(repos)")}
                if "version" not in columns:  # a meta.db from before versions
                    db.execute("ALTER TABLE repos ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
                _add_image_columns(db)
                _add_first_layer(db)
                db.executescript(_VERSION_TRIGGERS)
                db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                    (SCHEMA_VERSION,),
                )
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            self._writes += 1
            yield self._db

    def _read(self, query: str, *args: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(query, args).fetchall()

    def _begin(self, db: sqlite3.Connection) -> None:
        if not db.in_transaction:  # sqlite3 opens one only before a data change
            db.execute("BEGIN")

    def generation(self) -> object | None:
        # data_version moves when another connection (any process) commits; our own
        # commits are counted by _write. Both are read under the lock that writes hold.
        with self._lock:
            (version,) = self._db.execute("PRAGMA data_version").fetchone()
            return (version, self._writes)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def extension_read(self, query: str, *args: Any) -> list[Any]:
        try:
            return self._read(query, *args)
        except sqlite3.OperationalError as exc:
            if str(exc).startswith("no such table"):
                raise NoSuchTable(str(exc)) from exc
            raise

    def extension_write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._write()


def _api_key(row: Any) -> ApiKey:
    details = json.loads(row[0])
    details["last_used"] = row[1]
    details["scopes"] = tuple(details["scopes"])
    details["groups"] = tuple(details["groups"])
    return ApiKey(**details)
