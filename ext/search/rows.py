"""One repository's meta DB rows, read together for one summary.

A repository's summary shows every tagged image with its platforms, referrers and signatures.
Read one row at a time that is five or more queries per image (fifty for a repository of ten
tags, five hundred for a page of ten repositories); read together it is four per repository:
the tags, the tagged rows, an index's children, and the referrers of all of them.
"""

from __future__ import annotations

from typing import Any

from ocireg.meta.db import MetaDB


class RepoRows:
    """What :mod:`.summaries` reads of one repository, answered from rows read up front; what
    it does not hold (another extension's table) is asked of the meta DB itself."""

    def __init__(self, db: MetaDB, repo: str) -> None:
        self.db = db
        self.repo = repo
        self.tags = db.tagged(repo)
        self._tag_digest = {tag: digest for tag, digest, _ in self.tags}
        self._rows = db.images_of(repo, set(self._tag_digest.values()))
        children = {child for row in self._rows.values() for child in row["children"]}
        self._rows.update(db.images_of(repo, children - set(self._rows)))
        self._referrers = db.referrers_of(repo, set(self._rows))

    def image(self, repo: str, digest: str) -> dict[str, Any] | None:
        if repo != self.repo:
            return self.db.image(repo, digest)
        if digest not in self._rows:  # a legacy signature tag's manifest, say
            row = self.db.image(repo, digest)
            if row is None:
                return None
            self._rows[digest] = row
        return self._rows[digest]

    def referrers(self, repo: str, subject: str) -> list[dict[str, Any]]:
        if repo != self.repo or subject not in self._referrers:
            return self.db.referrers(repo, subject)
        return self._referrers[subject]

    def tag_digest(self, repo: str, tag: str) -> str | None:
        if repo != self.repo:
            return self.db.tag_digest(repo, tag)
        return self._tag_digest.get(tag)

    def extension_read(self, query: str, *args: Any) -> list[Any]:
        return self.db.extension_read(query, *args)
