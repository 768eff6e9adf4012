"""trust's tables in the meta DB: the uploaded keys and certificates, and each signature's
verdict, one row per signature layer (zot shows one ``SignatureInfo`` entry per layer).

Keys and certificates exist nowhere else (like zot's ``_cosign`` and ``_notation`` files);
verdicts are derived and are recomputed whenever something they depend on changes.
Search reads ``trust_verdicts`` through :func:`layer_verdicts`, with the connection it already
has; a meta DB where trust never ran has no such table, and every signature is untrusted.
The SQL is the kind both meta DB backends run (SQLite and PostgreSQL; see ``MetaDB``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from ocireg.meta.db import MetaDB, NoSuchTable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trust_material (
    tool TEXT NOT NULL,            -- cosign or notation
    store TEXT NOT NULL,           -- '' (cosign) or ca, signingAuthority, tsa
    digest TEXT NOT NULL,          -- sha256 of the DER key or certificate
    pem TEXT NOT NULL,
    label TEXT NOT NULL,           -- the key's kind, or the certificate's subject
    uploaded_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tool, store, digest)
);
CREATE TABLE IF NOT EXISTS trust_verdicts (
    repo TEXT NOT NULL,
    signature TEXT NOT NULL,       -- the signature manifest's digest
    layer INTEGER NOT NULL,        -- its position among the manifest's layers
    subject TEXT NOT NULL,         -- the digest of the manifest it signs
    tool TEXT NOT NULL,
    trusted INTEGER NOT NULL,
    author TEXT NOT NULL,
    reason TEXT NOT NULL,
    valid_until DOUBLE PRECISION,  -- when a trusted verdict lapses (a certificate's expiry)
    evaluated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (repo, signature, layer)
);
CREATE INDEX IF NOT EXISTS trust_verdicts_subject ON trust_verdicts (repo, subject);
CREATE INDEX IF NOT EXISTS trust_verdicts_tool ON trust_verdicts (tool);
"""


@dataclass(frozen=True)
class Material:
    tool: str
    store: str
    digest: str
    pem: str
    label: str
    uploaded_at: float


@dataclass(frozen=True)
class LayerVerdict:
    repo: str
    signature: str
    layer: int
    subject: str
    tool: str
    trusted: bool
    author: str
    reason: str
    valid_until: float | None


class TrustTables:
    def __init__(self, db: MetaDB) -> None:
        self.db = db
        with db.extension_write() as connection:
            connection.executescript(_SCHEMA)

    # -- keys and certificates ----------------------------------------------------------------
    def add_material(self, material: Material) -> bool:
        """Store it; False when it was there already."""
        with self.db.extension_write() as connection:
            cursor = connection.execute(
                "INSERT INTO trust_material VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (material.tool, material.store, material.digest, material.pem,
                 material.label, material.uploaded_at),
            )  # fmt: skip
            return bool(cursor.rowcount > 0)

    def remove_material(self, tool: str, store: str, digest: str) -> bool:
        with self.db.extension_write() as connection:
            cursor = connection.execute(
                "DELETE FROM trust_material WHERE tool = ? AND store = ? AND digest = ?",
                (tool, store, digest),
            )
            return bool(cursor.rowcount > 0)

    def material(self, tool: str) -> list[Material]:
        rows = self.db.extension_read(
            "SELECT * FROM trust_material WHERE tool = ? ORDER BY uploaded_at, digest", tool
        )
        return [Material(**dict(row)) for row in rows]

    # -- verdicts -----------------------------------------------------------------------------
    def put_verdicts(self, repo: str, signature: str, verdicts: list[LayerVerdict]) -> None:
        """Replace what is known of one signature manifest."""
        self.put_many([(repo, signature, verdicts)])

    def put_many(self, judged: list[tuple[str, str, list[LayerVerdict]]]) -> None:
        """Replace what is known of several signature manifests, in one transaction (a round
        of thousands commits in batches, not once a signature); an empty list forgets one."""
        now = time.time()
        with self.db.extension_write() as connection:
            connection.executemany(
                "DELETE FROM trust_verdicts WHERE repo = ? AND signature = ?",
                [(repo, signature) for repo, signature, _ in judged],
            )
            connection.executemany(
                "INSERT INTO trust_verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(v.repo, v.signature, v.layer, v.subject, v.tool, int(v.trusted), v.author,
                  v.reason, v.valid_until, now) for _, _, verdicts in judged for v in verdicts],
            )  # fmt: skip

    def forget(self, repo: str, signature: str | None = None) -> None:
        """Drop the verdicts of one signature manifest, or of a whole repository."""
        query, args = "DELETE FROM trust_verdicts WHERE repo = ?", [repo]
        if signature is not None:
            query, args = query + " AND signature = ?", [repo, signature]
        with self.db.extension_write() as connection:
            connection.execute(query, args)

    def signatures_of_tool(self, tool: str, *, trusted: bool) -> list[tuple[str, str]]:
        """(repo, signature digest) of every evaluated signature of ``tool`` with a layer whose
        verdict is ``trusted`` (or not)."""
        rows = self.db.extension_read(
            "SELECT DISTINCT repo, signature FROM trust_verdicts WHERE tool = ? AND trusted = ?",
            tool,
            int(trusted),
        )
        return [(row["repo"], row["signature"]) for row in rows]

    def lapsed(self, now: float) -> list[tuple[str, str]]:
        """Signatures with a trusted verdict whose ``valid_until`` has passed."""
        rows = self.db.extension_read(
            "SELECT DISTINCT repo, signature FROM trust_verdicts "
            "WHERE trusted = 1 AND valid_until IS NOT NULL AND valid_until <= ?",
            now,
        )
        return [(row["repo"], row["signature"]) for row in rows]

    def evaluated(self, repo: str) -> set[str]:
        rows = self.db.extension_read(
            "SELECT DISTINCT signature FROM trust_verdicts WHERE repo = ?", repo
        )
        return {row["signature"] for row in rows}

    def verdicts_for_subject(self, repo: str, subject: str) -> list[LayerVerdict]:
        rows = self.db.extension_read(
            "SELECT * FROM trust_verdicts WHERE repo = ? AND subject = ? ORDER BY signature, layer",
            repo,
            subject,
        )
        return [_verdict(row) for row in rows]


def _verdict(row: Any) -> LayerVerdict:
    return LayerVerdict(
        repo=row["repo"],
        signature=row["signature"],
        layer=row["layer"],
        subject=row["subject"],
        tool=row["tool"],
        trusted=bool(row["trusted"]),
        author=row["author"],
        reason=row["reason"],
        valid_until=row["valid_until"],
    )


class ExtensionReader(Protocol):
    def extension_read(self, query: str, *args: Any) -> list[Any]: ...


def layer_verdicts(db: ExtensionReader, repo: str, signature: str) -> dict[int, tuple[bool, str]]:
    """For search: layer -> (trusted, author) of one signature manifest; empty where trust
    never ran (no table) or has not judged it yet. A lapsed verdict counts as untrusted."""
    try:
        rows = db.extension_read(
            "SELECT layer, trusted, author, valid_until FROM trust_verdicts "
            "WHERE repo = ? AND signature = ?",
            repo,
            signature,
        )
    except (NoSuchTable, NotImplementedError):
        return {}
    now = time.time()
    found: dict[int, tuple[bool, str]] = {}
    for row in rows:
        trusted = bool(row["trusted"]) and (row["valid_until"] is None or row["valid_until"] > now)
        found[row["layer"]] = (trusted, row["author"] if trusted else "")
    return found


def next_lapse(db: ExtensionReader, repo: str) -> float | None:
    """When the first of a repository's trusted verdicts lapses (None: none will): until then
    what :func:`layer_verdicts` says of it stays true unless the tables change (search keeps
    summaries that long)."""
    try:
        rows = db.extension_read(
            "SELECT MIN(valid_until) FROM trust_verdicts "
            "WHERE repo = ? AND trusted = 1 AND valid_until > ?",
            repo,
            time.time(),
        )
    except (NoSuchTable, NotImplementedError):
        return None
    return float(rows[0][0]) if rows and rows[0][0] is not None else None
