"""The operations page's storage figures, kept per repository: each repository's blobs and
bytes, and its biggest images, read again only for repositories whose meta DB version moved.

Reading them for every repository means expanding every image's layer list (a second of CPU
at 10,000 repositories x 10 tags); a repository's rows change only when its version does
(``MetaDB.versions``), so after the first page a page reads what changed since the last.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator
from typing import Any

from ocireg.meta.db import MetaDB

# Each repository's blobs counted once however many of its images share them: every image
# manifest's own size and its layers' (the configs, a few hundred bytes each, are left out).
# The two engines expand a JSON array differently; the rest of the query is the same.
_LAYER_BLOBS = {
    "sqlite": """
    SELECT i.repo AS repo, l.value AS digest,
           CAST(json_extract(i.layer_sizes, '$[' || l.key || ']') AS INTEGER) AS size
    FROM images AS i, json_each(i.layers) AS l
    WHERE json_valid(i.layers) AND json_valid(i.layer_sizes) {and_images}""",
    "postgres": """
    SELECT i.repo AS repo, l.value AS digest,
           CAST(i.layer_sizes::jsonb ->> CAST(l.ord - 1 AS INTEGER) AS BIGINT) AS size
    FROM images AS i,
         jsonb_array_elements_text(CASE WHEN jsonb_typeof(i.layers::jsonb) = 'array'
                                   THEN i.layers::jsonb ELSE '[]'::jsonb END)
             WITH ORDINALITY AS l(value, ord)
    WHERE i.layer_sizes IS NOT NULL {and_images}""",
}
_STORAGE = """
WITH blobs AS ({layer_blobs}
    UNION
    SELECT repo, digest, COALESCE(size, 0) FROM images {where_images}
)
SELECT repo, COUNT(*) AS blobs, SUM(size) AS bytes FROM blobs GROUP BY repo
"""
_IMAGES = """
SELECT t.repo, t.tag, i.digest, i.content_size FROM tags AS t
JOIN images AS i ON i.repo = t.repo AND i.digest = t.digest
WHERE (i.signature IS NULL OR i.signature = '') {and_tags}
"""
CHUNK = 500  # repositories per IN list
WHOLE = 0.2  # more than this share of the repositories changed: read them all at once


def _chunks(names: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(names), CHUNK):
        yield names[start : start + CHUNK]


class StorageFigures:
    """Blobs, bytes and the biggest images of every repository, as of its last version seen."""

    def __init__(self, meta: MetaDB, top: int) -> None:
        self.meta = meta
        self.top = top
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._storage: dict[str, dict[str, Any]] = {}  # repo -> {repo, blobs, bytes}
        self._biggest: dict[str, list[dict[str, Any]]] = {}  # repo -> its biggest images
        self._generation: object | None = None
        self._answer: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])

    def current(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(each repository's {repo, blobs, bytes}, biggest first; the ``top`` biggest
        tagged images of all, as {repo, tag, digest, content_size}): the caller must not
        change them. While nothing is written (``MetaDB.generation``) nothing is read."""
        generation = self.meta.generation()  # before the reads: a write meanwhile shows next
        with self._lock:
            if generation is None or generation != self._generation:
                self._answer = self._refresh()
                self._generation = generation
            return self._answer

    def _refresh(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        versions = self.meta.versions()
        stale = [r for r, v in versions.items() if self._versions.get(r) != v]
        for repo in set(self._versions) - set(versions):
            self._forget(repo)
        if len(stale) > WHOLE * len(versions):
            self._read(None)
        else:
            for chunk in _chunks(stale):
                self._read(chunk)
        self._versions = versions
        storage = list(self._storage.values())
        tagged = [row for rows in self._biggest.values() for row in rows]
        storage.sort(key=lambda row: (-row["bytes"], row["repo"]))
        biggest = heapq.nlargest(self.top, tagged, key=lambda row: row["content_size"] or 0)
        return storage, biggest

    def _forget(self, repo: str) -> None:
        self._storage.pop(repo, None)
        self._biggest.pop(repo, None)
        self._versions.pop(repo, None)

    def _storage_query(self, and_images: str, where_images: str) -> str:
        layer_blobs = _LAYER_BLOBS[self.meta.engine].format(and_images=and_images)
        return _STORAGE.format(layer_blobs=layer_blobs, where_images=where_images)

    def _read(self, repos: list[str] | None) -> None:
        """Read the figures of ``repos`` (of every repository: None)."""
        if repos is None:
            self._storage.clear()
            self._biggest.clear()
            args: list[str] = []
            storage = self._storage_query(and_images="", where_images="")
            images = _IMAGES.format(and_tags="")
        else:
            for repo in repos:
                self._storage.pop(repo, None)
                self._biggest.pop(repo, None)
            marks = ",".join("?" * len(repos))
            args = repos
            storage = self._storage_query(
                and_images=f"AND i.repo IN ({marks})", where_images=f"WHERE repo IN ({marks})"
            )
            images = _IMAGES.format(and_tags=f"AND t.repo IN ({marks})")
        for row in self.meta.extension_read(storage, *args, *args):
            repo = row["repo"]
            self._storage[repo] = {"repo": repo, "blobs": row["blobs"],
                                   "bytes": int(row["bytes"] or 0)}  # fmt: skip
        by_repo: dict[str, list[dict[str, Any]]] = {}
        for row in self.meta.extension_read(images, *args):
            by_repo.setdefault(row["repo"], []).append(dict(row))
        for repo, rows in by_repo.items():
            self._biggest[repo] = heapq.nlargest(
                self.top, rows, key=lambda row: row["content_size"] or 0
            )
