"""Browser sessions (zot's ``http.auth.session*`` keys), kept server-side: made by the web UI's
password login and by OpenID login, and read by the UI's pages and, for requests marked as
coming from a UI (``X-ZOT-API-CLIENT: zot-ui``), by the API.

The cookie holds a random session id and nothing else: who the user is, their groups and the
session's CSRF token stay in the meta DB (``ui_sessions``), where every worker process finds
them: the meta DB's SQLite file, or with a PostgreSQL meta DB (``storage.cacheDriver``) that
database, so that a session made on one instance opens on every instance sharing it. Only a
SHA-256 of the id is stored, so a copy of the database opens no session. With
``sessionKeysFile`` the cookie also carries an HMAC of the id under the file's ``hashKey``, so a
cookie the registry did not issue is refused before any lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ocireg.auth.sessionkeys import SessionKeys
from ocireg.meta.db import Connection, MetaDB
from ocireg.registry.offloop import run_database_work

T = TypeVar("T")

COOKIE = "ocireg_session"
COOKIE_PATH = "/"  # the UI's pages and the API's /zot/auth endpoints both read it
LIFETIME = 12 * 3600.0  # seconds a session lasts after its login
PENDING_LIFETIME = 600.0  # seconds an OpenID login may take at its provider

# SQL that both backends run: "user" is quoted (PostgreSQL reserves the word), and times are
# DOUBLE PRECISION (PostgreSQL's REAL has 4 bytes; SQLite stores either in 8).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ui_sessions (
    id_hash TEXT PRIMARY KEY,
    "user" TEXT NOT NULL,
    method TEXT NOT NULL,
    groups TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS ui_sessions_expires ON ui_sessions (expires);
CREATE TABLE IF NOT EXISTS ui_openid_pending (
    id_hash TEXT PRIMARY KEY,
    login TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
"""


class _Tables(Protocol):
    def read(self, query: str, *args: Any) -> list[Any]: ...

    def write(self) -> AbstractContextManager[Connection]: ...

    def close(self) -> None: ...


class _OwnConnection:
    """The tables in an SQLite file (the meta DB's) through a connection of their own, or in
    this process's memory without a file."""

    def __init__(self, where: Path | None) -> None:
        self._db = sqlite3.connect(
            str(where) if where else ":memory:", check_same_thread=False, timeout=30
        )
        self._lock = threading.Lock()

    def read(self, query: str, *args: Any) -> list[Any]:
        with self._lock:
            return self._db.execute(query, args).fetchall()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._lock, self._db:
            yield self._db

    def close(self) -> None:
        self._db.close()


class _MetaTables:
    """The tables in a meta DB that instances share (PostgreSQL), on its connection; whoever
    opened the meta DB closes it."""

    def __init__(self, meta: MetaDB) -> None:
        self._meta = meta

    def read(self, query: str, *args: Any) -> list[Any]:
        return self._meta.extension_read(query, *args)

    def write(self) -> AbstractContextManager[Connection]:
        return self._meta.extension_write()

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Session:
    user: str
    method: str  # how the user logged in: htpasswd, ldap, openid
    groups: tuple[str, ...]
    csrf: str  # the token every state-changing form of this session must carry
    expires: float


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Sessions in the meta DB file, in a meta DB that instances share, or in memory for a
    registry without a storage root."""

    def __init__(
        self,
        where: Path | MetaDB | None,
        keys: SessionKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tables: _Tables = (
            _MetaTables(where) if isinstance(where, MetaDB) else _OwnConnection(where)
        )
        self._keys = keys
        self._clock = clock
        # whether a lookup is a request over the network (PostgreSQL): see ``asked``
        self.remote = isinstance(where, MetaDB) and where.shared_by_instances
        with self._tables.write() as db:
            db.executescript(_SCHEMA)

    @classmethod
    def of(
        cls,
        meta: MetaDB | None,
        keys: SessionKeys | None = None,
        clock: Callable[[], float] = time.time,
    ) -> SessionStore:
        """The store that goes with ``meta``: in the database itself when instances share it,
        else in its SQLite file (the meta DB's own; without one, memory)."""
        if meta is not None and meta.shared_by_instances:
            return cls(meta, keys, clock)
        return cls(getattr(meta, "path", None), keys, clock)

    async def asked(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)``, one of this store's methods, from the event loop: here on the
        local SQLite file, on a database thread when the sessions are in PostgreSQL (see
        ``MetaDB.asked``)."""
        return await run_database_work(self.remote, call, *args)

    async def find(self, cookie: str | None) -> Session | None:
        """``get`` from the event loop: a cookie that cannot open a session (none, too long,
        not signed with ``sessionKeysFile``'s key) is told so here, without asking the
        database (nor waiting for a thread behind others waiting on it)."""
        session_id = self._verify(cookie)
        if session_id is None:
            return None
        return await self.asked(self._get, session_id)

    def create(self, user: str, method: str, groups: tuple[str, ...]) -> tuple[str, Session]:
        """A new session and the cookie value that opens it."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(user, method, groups, secrets.token_urlsafe(32), now + LIFETIME)
        with self._tables.write() as db:
            db.execute("DELETE FROM ui_sessions WHERE expires < ?", (now,))
            row = (
                _hash(session_id),
                user,
                method,
                json.dumps(groups),
                session.csrf,
                now + LIFETIME,
            )
            db.execute("INSERT INTO ui_sessions VALUES (?, ?, ?, ?, ?, ?)", row)
        return self._sign(session_id), session

    def get(self, cookie: str | None) -> Session | None:
        session_id = self._verify(cookie)
        return None if session_id is None else self._get(session_id)

    def _get(self, session_id: str) -> Session | None:
        rows = self._tables.read(
            'SELECT "user", method, groups, csrf, expires FROM ui_sessions WHERE id_hash = ?',
            _hash(session_id),
        )
        row = rows[0] if rows else None
        if row is None or row[4] < self._clock():
            return None
        return Session(row[0], row[1], tuple(json.loads(row[2])), row[3], row[4])

    def delete(self, cookie: str | None) -> None:
        session_id = self._verify(cookie)
        if session_id is not None:
            with self._tables.write() as db:
                db.execute("DELETE FROM ui_sessions WHERE id_hash = ?", (_hash(session_id),))

    # -- OpenID logins on their way through a provider -------------------------------------
    def start_pending(self, login: dict[str, str]) -> str:
        """Keep what an OpenID login must check on its return (state, nonce, PKCE verifier,
        provider, where to go); the value of the cookie that finds it again."""
        pending_id = secrets.token_urlsafe(32)
        now = self._clock()
        with self._tables.write() as db:
            db.execute("DELETE FROM ui_openid_pending WHERE expires < ?", (now,))
            row = (_hash(pending_id), json.dumps(login), now + PENDING_LIFETIME)
            db.execute("INSERT INTO ui_openid_pending VALUES (?, ?, ?)", row)
        return self._sign(pending_id)

    def take_pending(self, cookie: str | None) -> dict[str, str] | None:
        """The pending login the cookie names, removed: each is good for one return."""
        pending_id = self._verify(cookie)
        if pending_id is None:
            return None
        with self._tables.write() as db:
            row = db.execute(
                "DELETE FROM ui_openid_pending WHERE id_hash = ? RETURNING login, expires",
                (_hash(pending_id),),
            ).fetchone()
        if row is None or row[1] < self._clock():
            return None
        login: dict[str, str] = json.loads(row[0])
        return login

    def close(self) -> None:
        self._tables.close()

    def _sign(self, session_id: str) -> str:
        if self._keys is None:
            return session_id
        mac = hmac.new(self._keys.hash_key, session_id.encode(), hashlib.sha256).hexdigest()
        return f"{session_id}.{mac}"

    def _verify(self, cookie: str | None) -> str | None:
        if not cookie or len(cookie) > 200:
            return None
        if self._keys is None:
            return cookie
        session_id = cookie.rpartition(".")[0]
        if not session_id or not hmac.compare_digest(self._sign(session_id), cookie):
            return None
        return session_id
