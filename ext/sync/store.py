"""What sync remembers, in the meta DB's SQLite file: which converted manifest stands for
which upstream one, so a round that finds the upstream unchanged copies nothing again."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_converted (
    repo TEXT NOT NULL,
    source TEXT NOT NULL,
    converted TEXT NOT NULL,
    PRIMARY KEY (repo, source)
);
CREATE INDEX IF NOT EXISTS sync_converted_by_result ON sync_converted (repo, converted);
"""


class Conversions:
    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path) if path else ":memory:", check_same_thread=False, timeout=30
        )
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)

    def record(self, repo: str, source: str, converted: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO sync_converted (repo, source, converted) VALUES (?, ?, ?)",
                (repo, source, converted),
            )

    def converted(self, repo: str, source: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT converted FROM sync_converted WHERE repo = ? AND source = ?",
                (repo, source),
            ).fetchone()
        return str(row[0]) if row else None

    def source(self, repo: str, converted: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT source FROM sync_converted WHERE repo = ? AND converted = ?",
                (repo, converted),
            ).fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        self._db.close()
