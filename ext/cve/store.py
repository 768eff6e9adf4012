"""The CVE tables, in the meta DB's file (``<root>/.ocireg/meta.db``), all named ``cve_*``.

- ``cve_advisories``/``cve_affected``/``cve_names``: the imported OSV records; a withdrawn one
  stays (so that an older copy of it is not imported again) without affected packages.
- ``cve_scans``: one row per scanned manifest digest; ``scans`` counts how often it was matched
  (an image without a row was never scanned).
- ``cve_packages``: the inventory each scan found, so that an update re-matches the images it can
  affect from here, without reading their layers again.
- ``cve_findings``: what matched, one row per CVE name and package.
- ``cve_layers``: each layer's reading (what its package files hold, its whiteouts, its paths),
  kept by layer digest so that an image sharing layers with one already scanned reads only its
  own; ``reads`` and ``reuses`` count how often the layer was read and how often its reading
  served instead.

Everything here is derived: from storage and the imported data.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .osv import Advisory
from .severity import RANK

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cve_advisories (
    id TEXT PRIMARY KEY, modified TEXT NOT NULL, withdrawn INTEGER NOT NULL,
    names TEXT NOT NULL, title TEXT NOT NULL, description TEXT NOT NULL,
    severity TEXT NOT NULL, reference TEXT NOT NULL
);
-- a finding's severity, and whether its advisory is withdrawn, without reading the record
CREATE INDEX IF NOT EXISTS cve_advisories_severity ON cve_advisories (id, withdrawn, severity);
CREATE TABLE IF NOT EXISTS cve_affected (
    advisory TEXT NOT NULL, ecosystem TEXT NOT NULL, key TEXT NOT NULL,
    ranges TEXT NOT NULL, versions TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cve_affected_key ON cve_affected (key, ecosystem);
CREATE INDEX IF NOT EXISTS cve_affected_advisory ON cve_affected (advisory);
CREATE TABLE IF NOT EXISTS cve_names (name TEXT NOT NULL, advisory TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cve_names_name ON cve_names (name);
CREATE INDEX IF NOT EXISTS cve_names_advisory ON cve_names (advisory);
CREATE TABLE IF NOT EXISTS cve_scans (
    digest TEXT PRIMARY KEY, scanned_at REAL NOT NULL, scans INTEGER NOT NULL DEFAULT 1,
    error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS cve_packages (
    digest TEXT NOT NULL, ecosystem TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL,
    version TEXT NOT NULL, path TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cve_packages_digest ON cve_packages (digest);
CREATE INDEX IF NOT EXISTS cve_packages_key ON cve_packages (key, ecosystem);
CREATE TABLE IF NOT EXISTS cve_findings (
    digest TEXT NOT NULL, cve TEXT NOT NULL, advisory TEXT NOT NULL, package TEXT NOT NULL,
    installed TEXT NOT NULL, fixed TEXT NOT NULL, path TEXT NOT NULL
);
-- an image's CVEs and their advisories are read from this index alone (CVEListForImage)
CREATE INDEX IF NOT EXISTS cve_findings_image ON cve_findings (digest, cve, advisory);
DROP INDEX IF EXISTS cve_findings_digest;
CREATE INDEX IF NOT EXISTS cve_findings_cve ON cve_findings (cve);
CREATE TABLE IF NOT EXISTS cve_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cve_layers (
    digest TEXT PRIMARY KEY, reading BLOB NOT NULL, kept_at REAL NOT NULL,
    reads INTEGER NOT NULL DEFAULT 1, reuses INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class ImportResult:
    stored: int  # new or newer records written
    unchanged: int  # records already held at that modified time or later
    withdrawn: int  # of those stored, how many are withdrawn
    touched: frozenset[tuple[str, str]]  # (ecosystem, key) whose advisories changed


_BATCH = 5_000  # records written together
# the secondary indexes of the advisory tables, built once after a first import instead of
# kept up to date through it
_DEFERRED = {
    "cve_affected_key": "cve_affected (key, ecosystem)",
    "cve_affected_advisory": "cve_affected (advisory)",
    "cve_names_name": "cve_names (name)",
    "cve_names_advisory": "cve_names (advisory)",
    "cve_advisories_severity": "cve_advisories (id, withdrawn, severity)",
}


@contextmanager
def _indexes_deferred(db: sqlite3.Connection, *, first: bool) -> Iterator[None]:
    """Within the import's transaction: readers keep seeing the indexes until it commits."""
    if first:
        for name in _DEFERRED:
            db.execute(f"DROP INDEX IF EXISTS {name}")
    yield
    if first:
        for name, on in _DEFERRED.items():
            db.execute(f"CREATE INDEX {name} ON {on}")


def _replace(db: sqlite3.Connection, advisory: str) -> list[tuple[str, str]]:
    """Remove the rows an advisory held is found by (its record is then written again); the
    (ecosystem, key) it named."""
    named = db.execute(
        "SELECT ecosystem, key FROM cve_affected WHERE advisory = ?", (advisory,)
    ).fetchall()
    db.execute("DELETE FROM cve_affected WHERE advisory = ?", (advisory,))
    db.execute("DELETE FROM cve_names WHERE advisory = ?", (advisory,))
    return named


class _Rows:
    """The rows of advisories to write, written together."""

    def __init__(self) -> None:
        self.advisories: list[tuple[Any, ...]] = []
        self.names: list[tuple[str, str]] = []
        self.affected: list[tuple[str, str, str, str, str]] = []

    def __len__(self) -> int:
        return len(self.advisories)

    def add(self, advisory: Advisory) -> None:
        self.advisories.append(
            (
                advisory.id,
                advisory.modified,
                int(advisory.withdrawn),
                json.dumps(advisory.names),
                advisory.title,
                advisory.description,
                advisory.severity,
                advisory.reference,
            )
        )
        if advisory.withdrawn:
            return
        self.names += [(name, advisory.id) for name in advisory.names]
        self.affected += [
            (advisory.id, a.ecosystem, a.key, json.dumps(a.ranges), json.dumps(a.versions))
            for a in advisory.affected
        ]

    def write(self, db: sqlite3.Connection) -> None:
        db.executemany(
            "INSERT OR REPLACE INTO cve_advisories VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            self.advisories,
        )
        db.executemany("INSERT INTO cve_names VALUES (?, ?)", self.names)
        db.executemany("INSERT INTO cve_affected VALUES (?, ?, ?, ?, ?)", self.affected)
        self.advisories, self.names, self.affected = [], [], []


@dataclass(frozen=True)
class StoredPackage:
    ecosystem: str
    key: str  # the name advisories are looked up by (source package, normalised name)
    name: str
    version: str
    path: str


@dataclass(frozen=True)
class Finding:
    cve: str
    advisory: str
    package: str
    installed: str
    fixed: str
    path: str


@dataclass(frozen=True)
class CveRow:
    """A finding with its advisory's severity; its words are read for the page shown only
    (:meth:`CveStore.words`)."""

    cve: str
    advisory: str
    severity: str
    package: str
    installed: str
    fixed: str
    path: str


@dataclass(frozen=True)
class Candidate:
    advisory: str
    ecosystem: str
    ranges: str  # JSON, as stored: the matcher's cache key
    versions: str  # JSON
    names: str  # JSON


class CveStore:
    """The CVE tables through one connection of their own (thread-safe)."""

    def __init__(self, where: Path | str, *, read_only: bool = False) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(where), check_same_thread=False, timeout=30)
        if read_only:
            self._db.execute("PRAGMA query_only=1")
        else:
            with self._db:
                self._db.executescript(_SCHEMA)

    @classmethod
    def reader(cls, path: Path) -> CveStore:
        return cls(path, read_only=True)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    def _read(self, query: str, *args: Any) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(query, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []  # a reader opened before anything was imported or scanned
                raise

    # -- advisories -------------------------------------------------------------------------
    def import_advisories(self, advisories: Iterable[Advisory]) -> ImportResult:
        """Store the records newer than what is held (by id and ``modified``), in one
        transaction. New records are written in batches (an export holds 100,000)."""
        stored = unchanged = withdrawn = 0
        touched: set[tuple[str, str]] = set()
        with self._write() as db:
            db.execute("BEGIN")  # the index changes of a first import are in it too
            held = dict(db.execute("SELECT id, modified FROM cve_advisories").fetchall())
            batch = _Rows()
            with _indexes_deferred(db, first=not held):
                for advisory in advisories:
                    before = held.get(advisory.id)
                    if before is not None and before >= advisory.modified:
                        unchanged += 1
                        continue
                    if before is not None:
                        batch.write(db)  # the rows it replaces may be in the batch still
                        touched.update(_replace(db, advisory.id))
                    batch.add(advisory)
                    if len(batch) >= _BATCH:
                        batch.write(db)
                    held[advisory.id] = advisory.modified
                    stored += 1
                    withdrawn += advisory.withdrawn
                    if not advisory.withdrawn:
                        touched.update((a.ecosystem, a.key) for a in advisory.affected)
                batch.write(db)
        return ImportResult(stored, unchanged, withdrawn, frozenset(touched))

    def modified_times(self) -> dict[str, str]:
        """id -> modified of every advisory held."""
        return {row[0]: row[1] for row in self._read("SELECT id, modified FROM cve_advisories")}

    def advisory_count(self) -> int:
        rows = self._read("SELECT count(*) FROM cve_advisories WHERE withdrawn = 0")
        return int(rows[0][0]) if rows else 0

    def has_data(self) -> bool:
        return bool(self._read("SELECT 1 FROM cve_advisories LIMIT 1"))

    def candidates(self, ecosystems: tuple[str, ...], key: str) -> list[Candidate]:
        """The advisories naming package ``key`` in one of ``ecosystems``."""
        marks = ", ".join("?" for _ in ecosystems)
        rows = self._read(
            "SELECT f.advisory, f.ecosystem, f.ranges, f.versions, a.names "
            "FROM cve_affected f JOIN cve_advisories a ON a.id = f.advisory "
            f"WHERE f.key = ? AND f.ecosystem IN ({marks})",
            key,
            *ecosystems,
        )
        return [Candidate(*row) for row in rows]

    # -- scans ------------------------------------------------------------------------------
    def record_scan(
        self, digest: str, packages: list[StoredPackage], findings: list[Finding], error: str = ""
    ) -> None:
        """Replace what is known of ``digest`` with a scan's inventory and findings."""
        with self._write() as db:
            db.execute("DELETE FROM cve_packages WHERE digest = ?", (digest,))
            db.executemany(
                "INSERT INTO cve_packages VALUES (?, ?, ?, ?, ?, ?)",
                [(digest, p.ecosystem, p.key, p.name, p.version, p.path) for p in packages],
            )
            self._replace_findings(db, digest, findings)
            db.execute(
                "INSERT INTO cve_scans (digest, scanned_at, scans, error) VALUES (?, ?, 1, ?) "
                "ON CONFLICT (digest) DO UPDATE SET scanned_at = excluded.scanned_at, "
                "scans = scans + 1, error = excluded.error",
                (digest, time.time(), error),
            )

    def record_match(self, digest: str, findings: list[Finding]) -> None:
        """Replace the findings of an image matched again from its stored inventory."""
        with self._write() as db:
            self._replace_findings(db, digest, findings)
            db.execute(
                "UPDATE cve_scans SET scans = scans + 1, scanned_at = ? WHERE digest = ?",
                (time.time(), digest),
            )

    @staticmethod
    def _replace_findings(db: sqlite3.Connection, digest: str, findings: list[Finding]) -> None:
        db.execute("DELETE FROM cve_findings WHERE digest = ?", (digest,))
        db.executemany(
            "INSERT INTO cve_findings VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (digest, f.cve, f.advisory, f.package, f.installed, f.fixed, f.path)
                for f in findings
            ],
        )

    def forget(self, digest: str) -> None:
        with self._write() as db:
            for table in ("cve_scans", "cve_packages", "cve_findings"):
                db.execute(f"DELETE FROM {table} WHERE digest = ?", (digest,))

    def scanned(self, digests: Iterable[str]) -> set[str]:
        """Those of ``digests`` scanned (successfully or not)."""
        return set(self.scan_states(digests))

    def scan_states(self, digests: Iterable[str]) -> dict[str, str]:
        """digest -> its scan's error ("" for a good scan), for those of ``digests`` scanned."""
        wanted = list(digests)
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._read(
                f"SELECT digest, error FROM cve_scans WHERE digest IN ({marks})", *chunk
            )
            found.update((row[0], row[1]) for row in rows)
        return found

    def scan_counts(self) -> dict[str, int]:
        return {row[0]: int(row[1]) for row in self._read("SELECT digest, scans FROM cve_scans")}

    def packages(self, digest: str) -> list[StoredPackage]:
        rows = self._read(
            "SELECT ecosystem, key, name, version, path FROM cve_packages WHERE digest = ?", digest
        )
        return [StoredPackage(*row) for row in rows]

    def affected_images(self, touched: Iterable[tuple[str, str]]) -> set[str]:
        """The scanned images holding a package an update changed the advisories of."""
        found: set[str] = set()
        for ecosystem, key in touched:
            rows = self._read(
                "SELECT DISTINCT digest, ecosystem FROM cve_packages WHERE key = ?", key
            )
            found.update(d for d, e in rows if e == ecosystem or e.split(":", 1)[0] == ecosystem)
        return found

    # -- layers -----------------------------------------------------------------------------
    def layer_reading(self, digest: str) -> bytes | None:
        rows = self._read("SELECT reading FROM cve_layers WHERE digest = ?", digest)
        return bytes(rows[0][0]) if rows else None

    def keep_layer_reading(self, digest: str, reading: bytes) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO cve_layers (digest, reading, kept_at) VALUES (?, ?, ?) "
                "ON CONFLICT (digest) DO UPDATE SET reading = excluded.reading, "
                "kept_at = excluded.kept_at, reads = reads + 1",
                (digest, reading, time.time()),
            )

    def count_layer_reuses(self, digests: Iterable[str]) -> None:
        with self._write() as db:
            db.executemany(
                "UPDATE cve_layers SET reuses = reuses + 1 WHERE digest = ?",
                [(digest,) for digest in digests],
            )

    def layer_counts(self) -> tuple[int, int]:
        """How often layers were read, and how often a kept reading served instead."""
        rows = self._read("SELECT total(reads), total(reuses) FROM cve_layers")
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    # -- answers ----------------------------------------------------------------------------
    def findings(self, digest: str, cves: Collection[str] | None = None) -> list[CveRow]:
        """The findings of an image (of only those CVEs, when given), in the order the scan
        found them (the order its packages are listed in)."""
        query = (
            "SELECT f.cve, f.advisory, a.severity, f.package, f.installed, f.fixed, f.path "
            "FROM cve_findings f JOIN cve_advisories a ON a.id = f.advisory "
            "WHERE f.digest = ? AND a.withdrawn = 0"
        )
        if cves is None:
            return [CveRow(*row) for row in self._read(query + " ORDER BY f.rowid", digest)]
        wanted = list(cves)
        found: list[CveRow] = []
        for start in range(0, len(wanted), 500):  # a CVE's rows are all in one chunk
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._read(f"{query} AND f.cve IN ({marks}) ORDER BY f.rowid", digest, *chunk)
            found += [CveRow(*row) for row in rows]
        return found

    def words(self, advisories: Iterable[str]) -> dict[str, tuple[str, str, str]]:
        """advisory -> (title, description, reference)."""
        wanted = list(set(advisories))
        found: dict[str, tuple[str, str, str]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._read(
                "SELECT id, title, description, reference FROM cve_advisories "
                f"WHERE id IN ({marks})",
                *chunk,
            )
            found.update((row[0], (row[1], row[2], row[3])) for row in rows)
        return found

    def severities(self, digests: list[str]) -> dict[str, str]:
        """CVE -> its highest severity, over the findings of ``digests``."""
        found: dict[str, str] = {}
        for start in range(0, len(digests), 500):
            chunk = digests[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._read(
                "SELECT DISTINCT f.cve, a.severity FROM cve_findings f JOIN cve_advisories a "
                f"ON a.id = f.advisory WHERE f.digest IN ({marks}) AND a.withdrawn = 0",
                *chunk,
            )
            for cve, severity in rows:
                if RANK.get(severity, 0) >= RANK.get(found.get(cve, ""), -1):
                    found[cve] = severity
        return found

    def images_with(self, cve: str) -> set[str]:
        """The scanned images a CVE (or advisory id) is found in."""
        rows = self._read(
            "SELECT DISTINCT f.digest FROM cve_findings f JOIN cve_advisories a "
            "ON a.id = f.advisory WHERE (f.cve = ? OR f.advisory = ?) AND a.withdrawn = 0",
            cve.upper() if cve.upper().startswith("CVE-") else cve,
            cve,
        )
        return {row[0] for row in rows}

    def state(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM cve_state WHERE key = ?", key)
        return str(rows[0][0]) if rows else None

    def set_state(self, key: str, value: str) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO cve_state VALUES (?, ?)", (key, value))
