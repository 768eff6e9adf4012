"""What search sorts and filters repositories by, kept per process and per repository.

Building a full RepoSummary means reading every tagged image of a repository; a GlobalSearch over
ten thousand repositories cannot do that per query. These facts are the few figures ranking,
filtering and sorting need, recomputed only for repositories whose meta DB version moved (any
process's write bumps it); summaries are then built for the requested page alone.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ocireg.meta.db import MetaDB
from ocireg.registry.signatures import cosign_tag, cosign_tag_subject

if TYPE_CHECKING:
    from .types import ImageSummary

# repositories whose image summaries are kept (those of the pages people look at: the home
# page's lists, the first pages of the explore list), until the meta DB is written
KEPT_SUMMARIES = 512

_DESCRIPTIVE = (
    "org.opencontainers.image.description",
    "org.opencontainers.image.title",
    "org.opencontainers.image.vendor",
    "org.opencontainers.image.source",
    "org.opencontainers.image.licenses",
    "org.opencontainers.image.authors",
    "org.opencontainers.image.documentation",
)


@dataclass
class RepoFacts:
    version: int
    tagged: int = 0
    updated: float = 0.0
    downloads: int = 0
    stars: int = 0
    signed: bool = False  # the newest image has a signature
    platforms: set[tuple[str, str]] = field(default_factory=set)
    text: str = ""  # descriptive annotation and label values, lower case


class TextIndex:
    """Which tagged repositories hold a text in their name, or in their descriptive text: one
    search through one long string each, not a test per repository (a GlobalSearch at 10,000
    repositories spent a quarter of its time on those tests)."""

    SEPARATOR = "\x00"  # between entries: in no name, and searched for by nobody

    def __init__(self, facts: dict[str, RepoFacts]) -> None:
        self.names = sorted(name for name, known in facts.items() if known.tagged)
        self._names = _Joined(self.names)
        self._texts = _Joined([facts[name].text for name in self.names])

    def holding(self, text: str) -> tuple[list[str], list[str]]:
        """(names that hold ``text``, names whose descriptive text alone holds it), sorted;
        ``text`` is not empty and holds no separator."""
        assert text and self.SEPARATOR not in text
        by_name = self._names.holding(text)
        named = set(by_name)
        by_text = [i for i in self._texts.holding(text) if i not in named]
        return [self.names[i] for i in by_name], [self.names[i] for i in by_text]


class ReadyOrders:
    """The tagged repositories in each order search lists them by, and which ones each filter
    keeps, of one state of the facts: a list of every repository (home, explore) then takes
    the first few of a ready order that are in a set, not a sort of ten thousand each query."""

    def __init__(self, facts: dict[str, RepoFacts]) -> None:
        self.facts = facts  # the state these orders are of: page with these figures only
        self.by_name = sorted(name for name, known in facts.items() if known.tagged)
        self.tagged = frozenset(self.by_name)

        def descending(figure: Callable[[RepoFacts], float]) -> list[str]:
            # as search's sort keys, (figure, name) descending: ties by name, Z first
            return sorted(self.by_name, key=lambda n: (figure(facts[n]), n), reverse=True)

        self.by_update = descending(lambda known: known.updated)
        self.by_downloads = descending(lambda known: known.downloads)
        self.by_stars = descending(lambda known: known.stars)
        self.os: dict[str, set[str]] = {}
        self.arch: dict[str, set[str]] = {}
        for name in self.by_name:
            for os, arch in facts[name].platforms:
                self.os.setdefault(os, set()).add(name)
                self.arch.setdefault(arch, set()).add(name)
        self.signed = frozenset(name for name in self.by_name if facts[name].signed)


class _Joined:
    def __init__(self, entries: list[str]) -> None:
        self.text = TextIndex.SEPARATOR.join(entries)
        self.starts: list[int] = []
        at = 0
        for entry in entries:
            self.starts.append(at)
            at += len(entry) + 1

    def holding(self, text: str) -> list[int]:
        """Indexes of the entries holding ``text``, each once, in order."""
        found: list[int] = []
        at = self.text.find(text)
        while at != -1:
            entry = bisect_right(self.starts, at) - 1
            found.append(entry)
            following = entry + 1
            if following == len(self.starts):
                break
            at = self.text.find(text, self.starts[following])
        return found


class FactsCache:
    """Each repository's facts, and the sorted list of repositories, as of the meta DB's last
    write: while nothing is written (``MetaDB.generation`` is unchanged) a query reads none of
    it again; a write costs one read of every repository's version and the recomputation of
    the repositories whose version moved."""

    def __init__(self, db: MetaDB) -> None:
        self.db = db
        self._facts: dict[str, RepoFacts] = {}
        self._lock = threading.Lock()
        self._generation: object | None = None
        self._view: dict[str, RepoFacts] = {}  # what callers get: replaced, never changed
        self._names: list[str] = []
        self._index: TextIndex | None = None  # of _view, built when first asked for
        self._orders: ReadyOrders | None = None  # of _view, built when first asked for
        # repository -> (its image summaries, as of _generation (dropped at every write), and
        # until when they hold: a trusted verdict lapses with time)
        self._summaries: dict[str, tuple[list[ImageSummary], float]] = {}

    def current(self) -> dict[str, RepoFacts]:
        """Every repository's facts (the caller must not change the mapping)."""
        generation = self.db.generation()  # before the reads: a write meanwhile shows next time
        with self._lock:
            if generation is None or generation != self._generation:
                self._refresh()
                self._generation = generation
            return self._view

    def index(self) -> TextIndex:
        """The text index of the facts ``current`` returns (built once per change)."""
        self.current()
        with self._lock:
            if self._index is None:
                self._index = TextIndex(self._view)
            return self._index

    def orders(self) -> ReadyOrders:
        """The orders and filter sets of the facts ``current`` returns (built once per change);
        ``ReadyOrders.facts`` is the state they are of."""
        self.current()
        with self._lock:
            if self._orders is None:
                self._orders = ReadyOrders(self._view)
            return self._orders

    def summaries(
        self, repo: str, build: Callable[[], tuple[list[ImageSummary], float]]
    ) -> list[ImageSummary]:
        """A readable repository's image summaries: those ``build`` made since the meta DB's
        last write while they hold, else ``build``'s now (its summaries, and the time until
        which they hold), kept for the next query when nothing was written meanwhile. Nothing
        in a summary depends on who asks; the caller must not change them."""
        self.current()
        with self._lock:
            generation = self._generation
            kept = self._summaries.pop(repo, None)
            if kept is not None and time.time() < kept[1]:
                self._summaries[repo] = kept  # the most recently used last
                return list(kept[0])
        found, until = build()
        with self._lock:
            if generation is not None and generation == self._generation:
                self._summaries[repo] = (found, until)
                while len(self._summaries) > KEPT_SUMMARIES:
                    del self._summaries[next(iter(self._summaries))]
        return list(found)

    def repositories(self) -> list[str]:
        """Every repository in the meta DB, sorted (the caller must not change the list)."""
        self.current()
        return self._names

    def _refresh(self) -> None:
        versions = self.db.versions()
        for repo in set(self._facts) - set(versions):
            del self._facts[repo]
        stale = [r for r, v in versions.items() if (f := self._facts.get(r)) is None or
                 f.version != v]  # fmt: skip
        if stale:
            stars = self.db.star_counts()
            for repo in stale:
                self._facts[repo] = self._compute(repo, versions[repo], stars.get(repo, 0))
        self._view = dict(self._facts)
        self._index = None
        self._orders = None
        self._summaries.clear()
        self._names = sorted(versions)

    def _compute(self, repo: str, version: int, stars: int) -> RepoFacts:
        facts = RepoFacts(version, stars=stars)
        images = {row["digest"]: row for row in self.db.images(repo)}
        newest: tuple[float, str] | None = None
        texts: list[str] = []
        for tag, digest, _tagged_at in self.db.tagged(repo):
            row = images.get(digest)
            if row is None or cosign_tag_subject(tag) is not None or row["signature"]:
                continue  # a signature (a legacy cosign one, or any tagged) is not an image
            facts.tagged += 1
            facts.downloads += row["downloads"]
            when = row.get("pushed_at") or 0.0
            if newest is None or when > newest[0]:
                newest = (when, digest)
            family = [row] + [images[c] for c in row["children"] if c in images]
            for member in family:
                facts.platforms |= {(p.os, p.arch) for p in member["platforms"]}
                values = {**member["labels"], **member["annotations"]}
                texts += [values[key] for key in _DESCRIPTIVE if values.get(key)]
        if newest is not None:
            facts.updated = newest[0]
            facts.signed = any(r.get("signature") for r in self.db.referrers(repo, newest[1]))
            signature_tag = cosign_tag(newest[1])
            if signature_tag is not None and self.db.tag_digest(repo, signature_tag) is not None:
                facts.signed = True
        facts.text = "\n".join(texts).lower()
        return facts
