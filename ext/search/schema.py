"""The Query type: zot's search queries over the meta DB.

Answers only what the caller may read: every resolver goes through ``Search.readable``, the
repositories accessControl lets the caller read.
Paging, filters and sort orders follow zot; ``STARS`` sorts by star count, which zot declares
but cannot do; GlobalSearch also matches annotation and label values.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry
from strawberry.types import Info

from ocireg.ext.trust.store import next_lapse
from ocireg.meta.db import ImageRow, MetaDB
from ocireg.registry.signatures import cosign_tag_subject

from . import types as t
from .facts import FactsCache, ReadyOrders, RepoFacts, TextIndex
from .rows import RepoRows
from .settings import QUERY_TIMEOUT
from .summaries import image_summary

if TYPE_CHECKING:
    from ..cve.store import CveStore

MAX_INPUT = 256
ANNOTATION_RANK = 10_000  # after every match by name
CVE_DISABLED = "CVE scanning is not enabled on this registry"  # as ocireg.ext.cve.queries says
_EPOCH = datetime.min.replace(tzinfo=UTC)


class QueryTimeout(ValueError):
    """The query ran past ``extensions.search.limits.queryTimeout``."""

    def __init__(self) -> None:
        super().__init__(QUERY_TIMEOUT)


class ResultTooLarge(ValueError):
    """The answer grew past ``extensions.search.limits.maxResultItems``."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the answer would hold more than {limit} list items "
            "(extensions.search.limits.maxResultItems); ask for fewer images or fields"
        )


@dataclass
class Search:
    """What every resolver needs: the meta DB, its per-repository facts, and who is asking
    ("" for anonymous)."""

    db: MetaDB
    facts: FactsCache
    user: str = ""
    keep_readable: Callable[[list[str]], list[str]] = list  # the caller's, of all of them
    deadline: float = math.inf  # time.monotonic() past which the query stops (QueryTimeout)
    max_items: int | None = None  # list items the answer may hold (ResultTooLarge)
    cve: CveStore | None = None  # CVE scanning's results, when it is on
    _items: int = field(default=0, init=False)
    _readable: list[str] | None = field(default=None, init=False)
    _readable_set: frozenset[str] | None = field(default=None, init=False)
    _stars: dict[str, int] | None = field(default=None, init=False)
    _preferences: dict[str, tuple[bool, bool]] | None = field(default=None, init=False)

    def charge(self, items: int) -> None:
        """Count ``items`` more list items into the answer (an image's layers, its history):
        what the cost estimate cannot know before the query runs. Once over the bound, every
        later charge is refused too, even of nothing."""
        self._items += items
        if self.max_items is not None and self._items > self.max_items:
            raise ResultTooLarge(self.max_items)

    def step(self) -> None:
        """Called before each image a query reads: stop there once the query is out of time."""
        if time.monotonic() > self.deadline:
            raise QueryTimeout

    def readable(self) -> list[str]:
        """The repositories the caller may read (once per query)."""
        if self._readable is None:
            self._readable = self.keep_readable(self.facts.repositories())
        return self._readable

    def images(self, repo: str) -> list[t.ImageSummary]:
        """A repository's tagged images (the caller checks that it may read them): built
        once per meta DB state and kept (:meth:`.FactsCache.summaries`)."""
        return self.facts.summaries(repo, lambda: self._summarise(repo))

    def _summarise(self, repo: str) -> tuple[list[t.ImageSummary], float]:
        """The summaries, and until when they hold (trust's verdicts lapse)."""
        self.step()
        lapse = next_lapse(self.db, repo)  # before the verdicts are read
        rows = RepoRows(self.db, repo)
        found = []
        for tag, digest, tagged_at in rows.tags:
            self.step()
            if cosign_tag_subject(tag) is not None:
                continue  # a signature: its image says IsSigned, as in zot
            row = rows.image(repo, digest)
            if row is not None and not row["signature"]:  # a tagged signature is none either
                found.append(image_summary(rows, repo, tag, row, tagged_at))
        for image in found:  # kept beyond this query: without its layer lists
            for manifest in image.Manifests or []:
                if manifest is not None and isinstance(manifest.row, ImageRow):
                    manifest.row.forget_bulky()
        return found, math.inf if lapse is None else lapse

    def readable_set(self) -> set[str] | frozenset[str]:
        """``readable`` as a set (once per query)."""
        if self._readable_set is None:
            self._readable_set = frozenset(self.readable())
        return self._readable_set

    def stars(self) -> dict[str, int]:
        """Each repository's star count (read once per query)."""
        if self._stars is None:
            self._stars = self.db.star_counts()
        return self._stars

    def preferences(self) -> dict[str, tuple[bool, bool]]:
        """The caller's (starred, bookmarked) by repository (read once per query)."""
        if self._preferences is None:
            self._preferences = self.db.preferences(self.user) if self.user else {}
        return self._preferences

    def repo_summary(self, repo: str, images: list[t.ImageSummary] | None = None) -> t.RepoSummary:
        images = self.images(repo) if images is None else images
        stars = self.stars().get(repo, 0)
        starred, bookmarked = self.preferences().get(repo, (False, False))
        platforms: list[t.Platform | None] = []
        seen: set[tuple[str | None, str | None]] = set()
        for image in images:
            for manifest in image.Manifests or []:
                p = manifest.Platform if manifest else None
                if p is not None and (p.Os, p.Arch) not in seen:
                    seen.add((p.Os, p.Arch))
                    platforms.append(p)
        newest = max(images, key=lambda i: i.LastUpdated or _EPOCH, default=None)
        vendors = sorted({i.Vendor for i in images if i.Vendor})
        return t.RepoSummary(
            Name=repo,
            LastUpdated=newest.LastUpdated if newest else None,
            Size=str(sum(int(i.Size or 0) for i in images)),
            Platforms=platforms,
            Vendors=list(vendors),
            NewestImage=newest,
            DownloadCount=sum(i.DownloadCount or 0 for i in images),
            StarCount=stars,
            IsBookmarked=bookmarked,
            IsStarred=starred,
            Rank=-1,
        )


def _search(info: Info[Search, None]) -> Search:
    return info.context


def _cve_enabled(info: Info[Search, None]) -> None:
    if info.context.cve is None:
        raise ValueError(CVE_DISABLED)


T = TypeVar("T")
Orders = dict[t.SortCriteria, tuple[Callable[[T], Any], bool]]  # a sort key, and descending?


def _page(
    items: list[T],
    page: t.PageInput | None,
    keys: Orders[T],
    default: t.SortCriteria,
) -> tuple[list[T], t.PageInfo]:
    page = page or t.PageInput()
    if (page.limit or 0) < 0 or (page.offset or 0) < 0:
        raise ValueError("limit and offset must not be negative")
    criteria = page.sortBy or default
    if criteria not in keys:
        raise ValueError(f"sorting by {criteria.value} is not supported here")
    key, descending = keys[criteria]
    start = page.offset or 0
    if page.limit and start + page.limit < len(items) // 4:
        # the first few of many (a page of 10,000 repositories): a heap, not a whole sort;
        # nsmallest and nlargest keep sorted()'s order, ties included
        pick = heapq.nlargest if descending else heapq.nsmallest
        chosen = pick(start + page.limit, items, key=key)[start:]
    else:
        ordered = sorted(items, key=key, reverse=descending)
        chosen = ordered[start : start + page.limit] if page.limit else ordered[start:]
    return chosen, t.PageInfo(TotalCount=len(items), ItemCount=len(chosen))


def _tagged(facts: dict[str, RepoFacts], name: str) -> bool:
    known = facts.get(name)
    return known is not None and known.tagged > 0


def _updated(item: t.ImageSummary | t.RepoSummary) -> datetime:
    return item.LastUpdated or _EPOCH


def _image_keys() -> Orders[t.ImageSummary]:
    def name(i: t.ImageSummary) -> tuple[str, str]:
        return (i.RepoName or "", i.Tag or "")

    return {
        t.SortCriteria.RELEVANCE: (name, False),
        t.SortCriteria.UPDATE_TIME: (_updated, True),
        t.SortCriteria.ALPHABETIC_ASC: (name, False),
        t.SortCriteria.ALPHABETIC_DSC: (name, True),
        t.SortCriteria.DOWNLOADS: (lambda i: i.DownloadCount or 0, True),
    }


def rank(query: str, repo: str) -> int:
    """zot's repository rank: lower is better, -1 means no match."""
    wanted, parts = query.split("/"), repo.split("/")
    if len(wanted) > len(parts):
        return -1
    if query == repo:
        return 0
    if len(wanted) == 1:
        if (at := parts[-1].find(query)) != -1:
            return at + 1
        if (at := parts[0].find(query)) != -1:
            return (at + 1) * 10
    if repo.startswith(query):
        return 10
    if (at := repo.find(query)) != -1:
        return (at + 1) * 100
    return -1


def _matching(search: Search, facts: dict[str, RepoFacts], text: str) -> list[tuple[str, int]]:
    """(name, rank) of the readable tagged repositories that ``text`` finds, by name first,
    then by a descriptive annotation or label (zot skips repositories without tags)."""
    if not text or TextIndex.SEPARATOR in text:
        candidates = [name for name in search.readable() if _tagged(facts, name)]
        if not text:
            return [(name, 0) for name in candidates]
    else:  # the index names the candidates: only they can match
        by_name, by_text = search.facts.index().holding(text)
        readable = search.readable_set()
        # the index may be of a newer state than ``facts``: what it alone knows waits a query
        candidates = [name for name in by_name + by_text if name in readable and name in facts]
    found = [(name, _score(text, name, facts[name])) for name in candidates]
    return [(name, score) for name, score in found if score >= 0]


def _score(text: str, name: str, known: RepoFacts) -> int:
    # rank matches only names that hold the text: test that first, cheaply
    score = rank(text, name) if text in name else -1
    if score < 0 and text in known.text:
        score = ANNOTATION_RANK  # found through an annotation or label
    return score


def _matches_filter(search: Search, name: str, facts: RepoFacts, wanted: t.Filter | None) -> bool:
    if wanted is None:
        return True
    if wanted.Os and not any(os in wanted.Os for os, _ in facts.platforms):
        return False
    if wanted.Arch and not any(arch in wanted.Arch for _, arch in facts.platforms):
        return False
    if wanted.HasToBeSigned and not facts.signed:
        return False
    if wanted.IsStarred is None and wanted.IsBookmarked is None:
        return True
    starred, bookmarked = search.preferences().get(name, (False, False))
    if wanted.IsStarred is not None and starred != wanted.IsStarred:
        return False
    return wanted.IsBookmarked is None or bookmarked == wanted.IsBookmarked


def _repo_page(
    search: Search,
    facts: dict[str, RepoFacts],
    ranked: list[tuple[str, int]],
    page: t.PageInput | None,
    default: t.SortCriteria,
) -> t.PaginatedReposResult:
    """Sort and cut repositories on their facts, then build summaries for the page only."""
    keys: Orders[tuple[str, int]] = {
        t.SortCriteria.RELEVANCE: (lambda r: (r[1], r[0]), False),
        t.SortCriteria.UPDATE_TIME: (lambda r: (facts[r[0]].updated, r[0]), True),
        t.SortCriteria.ALPHABETIC_ASC: (lambda r: r[0], False),
        t.SortCriteria.ALPHABETIC_DSC: (lambda r: r[0], True),
        t.SortCriteria.DOWNLOADS: (lambda r: (facts[r[0]].downloads, r[0]), True),
        t.SortCriteria.STARS: (lambda r: (facts[r[0]].stars, r[0]), True),
    }
    chosen, info = _page(ranked, page, keys, default)
    results = []
    for name, score in chosen:
        summary = search.repo_summary(name)
        summary.Rank = score
        results.append(summary)
    return t.PaginatedReposResult(Page=info, Results=results)


def _filtered(search: Search, orders: ReadyOrders, wanted: t.Filter | None) -> Set[str]:
    """The readable tagged repositories ``wanted`` keeps (``_matches_filter`` by sets)."""
    names: Set[str] = orders.tagged & search.readable_set()
    if wanted is None:
        return names

    def either(sets: dict[str, set[str]], values: Iterable[str | None]) -> set[str]:
        return set().union(*(sets.get(value, ()) for value in values if value is not None))

    if wanted.Os:
        names = names & either(orders.os, wanted.Os)
    if wanted.Arch:
        names = names & either(orders.arch, wanted.Arch)
    if wanted.HasToBeSigned:
        names = names & orders.signed
    asks = wanted.IsStarred is not None or wanted.IsBookmarked is not None
    prefs = search.preferences() if asks else {}
    for asked, which in ((wanted.IsStarred, 0), (wanted.IsBookmarked, 1)):
        if asked is not None:
            chosen = {name for name, both in prefs.items() if both[which]}
            names = names & chosen if asked else names - chosen
    return names


def _listing(
    search: Search,
    orders: ReadyOrders,
    names: Set[str],
    page: t.PageInput | None,
    default: t.SortCriteria,
) -> t.PaginatedReposResult:
    """A page of ``names`` (repositories all ranked alike) in a ready order: what
    ``_repo_page`` answers for them, with no sort."""
    page = page or t.PageInput()
    if (page.limit or 0) < 0 or (page.offset or 0) < 0:
        raise ValueError("limit and offset must not be negative")
    criteria = page.sortBy or default
    ready: dict[t.SortCriteria, Iterable[str]] = {
        t.SortCriteria.RELEVANCE: orders.by_name,  # every rank alike: by name, as (rank, name)
        t.SortCriteria.UPDATE_TIME: orders.by_update,
        t.SortCriteria.ALPHABETIC_ASC: orders.by_name,
        t.SortCriteria.ALPHABETIC_DSC: reversed(orders.by_name),
        t.SortCriteria.DOWNLOADS: orders.by_downloads,
        t.SortCriteria.STARS: orders.by_stars,
    }
    if criteria not in ready:
        raise ValueError(f"sorting by {criteria.value} is not supported here")
    start = page.offset or 0
    end = start + page.limit if page.limit else None
    chosen = list(islice((name for name in ready[criteria] if name in names), start, end))
    results = []
    for name in chosen:
        summary = search.repo_summary(name)
        summary.Rank = 0
        results.append(summary)
    info = t.PageInfo(TotalCount=len(names), ItemCount=len(chosen))
    return t.PaginatedReposResult(Page=info, Results=results)


def split_reference(image: str) -> tuple[str, str | None, str | None]:
    if "@" in image:
        repo, digest = image.split("@", 1)
        return repo, None, digest
    repo, _, tag = image.rpartition(":") if ":" in image else (image, "", "")
    return repo, tag or None, None


@strawberry.type
class Query:
    @strawberry.field(description="CVEs of an image (needs CVE scanning).")
    def CVEListForImage(
        self,
        info: Info[Search, None],
        image: str,
        requestedPage: t.PageInput | None = None,
        searchedCVE: str | None = None,
        excludedCVE: str | None = None,
        severity: str | None = None,
    ) -> t.CVEResultForImage:
        from ..cve import queries

        _cve_enabled(info)
        return queries.cve_list_for_image(
            _search(info), image, requestedPage, searchedCVE, excludedCVE, severity
        )

    @strawberry.field(description="CVEs of one image that another does not have.")
    def CVEDiffListForImages(
        self,
        info: Info[Search, None],
        minuend: t.ImageInput,
        subtrahend: t.ImageInput,
        requestedPage: t.PageInput | None = None,
        searchedCVE: str | None = None,
        excludedCVE: str | None = None,
    ) -> t.CVEDiffResult:
        from ..cve import queries

        _cve_enabled(info)
        return queries.cve_diff(
            _search(info), minuend, subtrahend, requestedPage, searchedCVE, excludedCVE
        )

    @strawberry.field(description="Images affected by a CVE (needs CVE scanning).")
    def ImageListForCVE(
        self,
        info: Info[Search, None],
        id: str,
        filter: t.Filter | None = None,
        requestedPage: t.PageInput | None = None,
    ) -> t.PaginatedImagesResult:
        from ..cve import queries

        _cve_enabled(info)
        found = queries.images_for_cve(_search(info), id, filter)
        results, page = _page(found, requestedPage, _image_keys(), t.SortCriteria.RELEVANCE)
        return t.PaginatedImagesResult(Page=page, Results=results)

    @strawberry.field(description="Tags of a repository where a CVE is fixed.")
    def ImageListWithCVEFixed(
        self,
        info: Info[Search, None],
        id: str,
        image: str,
        filter: t.Filter | None = None,
        requestedPage: t.PageInput | None = None,
    ) -> t.PaginatedImagesResult:
        from ..cve import queries

        _cve_enabled(info)
        found = queries.images_with_cve_fixed(_search(info), id, image, filter)
        results, page = _page(found, requestedPage, _image_keys(), t.SortCriteria.RELEVANCE)
        return t.PaginatedImagesResult(Page=page, Results=results)

    @strawberry.field(description="Images whose manifest, config or layer digest contains id.")
    def ImageListForDigest(
        self, info: Info[Search, None], id: str, requestedPage: t.PageInput | None = None
    ) -> t.PaginatedImagesResult:
        search, wanted = _search(info), id.strip().lower()
        found = []
        for repo in search.readable():
            for image in search.images(repo):
                manifests = [m for m in image.Manifests or [] if m is not None]
                digests = [image.Digest or ""]
                for manifest in manifests:
                    digests += [manifest.Digest or "", manifest.ConfigDigest or ""]
                if any(wanted in digest for digest in digests) or any(
                    manifest.names_layer(wanted) for manifest in manifests
                ):
                    found.append(image)
        results, page = _page(found, requestedPage, _image_keys(), t.SortCriteria.RELEVANCE)
        return t.PaginatedImagesResult(Page=page, Results=results)

    @strawberry.field(description="Every repository with its newest image.")
    def RepoListWithNewestImage(
        self, info: Info[Search, None], requestedPage: t.PageInput | None = None
    ) -> t.PaginatedReposResult:
        search = _search(info)
        orders = search.facts.orders()
        names = _filtered(search, orders, None)
        return _listing(search, orders, names, requestedPage, t.SortCriteria.UPDATE_TIME)

    @strawberry.field(description="Every tag of a repository (of every one for an empty name).")
    def ImageList(
        self, info: Info[Search, None], repo: str, requestedPage: t.PageInput | None = None
    ) -> t.PaginatedImagesResult:
        search = _search(info)
        repos = search.readable() if repo == "" else [r for r in search.readable() if r == repo]
        images = [image for name in repos for image in search.images(name)]
        results, page = _page(images, requestedPage, _image_keys(), t.SortCriteria.RELEVANCE)
        return t.PaginatedImagesResult(Page=page, Results=results)

    @strawberry.field(description="A repository's images, newest first, and its summary.")
    def ExpandedRepoInfo(self, info: Info[Search, None], repo: str) -> t.RepoInfo:
        search = _search(info)
        if repo not in search.readable():
            return t.RepoInfo(Images=[], Summary=None)  # quietly: nothing to tell an intruder
        images = search.images(repo)
        images.sort(key=lambda i: -(i.LastUpdated or _EPOCH).timestamp())
        return t.RepoInfo(Images=list(images), Summary=search.repo_summary(repo, images))

    @strawberry.field(description="Repositories by name, images by tag or digest, annotations.")
    def GlobalSearch(
        self,
        info: Info[Search, None],
        query: str,
        filter: t.Filter | None = None,
        requestedPage: t.PageInput | None = None,
    ) -> t.GlobalSearchResult:
        search = _search(info)
        for value in [
            query,
            *((filter.Os or []) if filter else []),
            *((filter.Arch or []) if filter else []),
        ]:
            if value is not None and len(value) > MAX_INPUT:
                raise ValueError(f"search input longer than {MAX_INPUT} characters")
        text = query.strip().strip("/").lower()
        if text.startswith("sha256:") or (":" in text or "@" in text):
            images = _images_for(search, text)
            results, page = _page(images, requestedPage, _image_keys(), t.SortCriteria.RELEVANCE)
            return t.GlobalSearchResult(Page=page, Images=list(results), Repos=[], Layers=[])
        if not text:  # every tagged repository, ranked alike: a ready order and sets
            orders = search.facts.orders()
            names = _filtered(search, orders, filter)
            found = _listing(search, orders, names, requestedPage, t.SortCriteria.RELEVANCE)
            return t.GlobalSearchResult(
                Page=found.Page, Images=[], Repos=list(found.Results), Layers=[]
            )
        facts = search.facts.current()
        ranked = [
            (name, score)
            for name, score in _matching(search, facts, text)
            if _matches_filter(search, name, facts[name], filter)
        ]
        found = _repo_page(search, facts, ranked, requestedPage, t.SortCriteria.RELEVANCE)
        return t.GlobalSearchResult(
            Page=found.Page, Images=[], Repos=list(found.Results), Layers=[]
        )

    @strawberry.field(description="Images built on the given one (its layers are a prefix).")
    def DerivedImageList(
        self,
        info: Info[Search, None],
        image: str,
        digest: str | None = None,
        requestedPage: t.PageInput | None = None,
    ) -> t.PaginatedImagesResult:
        return _related(_search(info), image, digest, requestedPage, derived=True)

    @strawberry.field(description="Images the given one is built on.")
    def BaseImageList(
        self,
        info: Info[Search, None],
        image: str,
        digest: str | None = None,
        requestedPage: t.PageInput | None = None,
    ) -> t.PaginatedImagesResult:
        return _related(_search(info), image, digest, requestedPage, derived=False)

    @strawberry.field(description="One image, by repo:tag or repo@digest.")
    def Image(self, info: Info[Search, None], image: str) -> t.ImageSummary:
        search = _search(info)
        repo, tag, digest = split_reference(image)
        if tag is None and digest is None:
            raise ValueError("no reference provided")
        for found in search.images(repo) if repo in search.readable() else []:
            if (tag is not None and found.Tag == tag) or (digest and found.Digest == digest):
                return found
        raise ValueError(f"image {image} not found")

    @strawberry.field(description="Manifests whose subject is a digest, of some artifact types.")
    def Referrers(
        self, info: Info[Search, None], repo: str, digest: str, type: list[str] | None = None
    ) -> list[t.Referrer | None]:
        from .summaries import referrer

        search = _search(info)
        if repo not in search.readable():
            return []
        wanted = set(type or [])
        return [
            referrer(row)
            for row in search.db.referrers(repo, digest)
            if not wanted or "" in wanted or row["artifact_type"] in wanted
        ]

    @strawberry.field(description="Repositories the caller starred.")
    def StarredRepos(
        self, info: Info[Search, None], requestedPage: t.PageInput | None = None
    ) -> t.PaginatedReposResult:
        return _preferred(_search(info), requestedPage, starred=True)

    @strawberry.field(description="Repositories the caller bookmarked.")
    def BookmarkedRepos(
        self, info: Info[Search, None], requestedPage: t.PageInput | None = None
    ) -> t.PaginatedReposResult:
        return _preferred(_search(info), requestedPage, starred=False)


def _images_for(search: Search, text: str) -> list[t.ImageSummary]:
    if text.startswith("sha256:"):
        return [
            i for repo in search.readable() for i in search.images(repo) if text in (i.Digest or "")
        ]
    repo, _, tag = text.partition(":")
    if repo:
        return (
            [i for i in search.images(repo) if (i.Tag or "").lower().startswith(tag)]
            if repo in search.readable()
            else []
        )
    return [
        i for name in search.readable() for i in search.images(name) if tag in (i.Tag or "").lower()
    ]


def _preferred(
    search: Search, page: t.PageInput | None, *, starred: bool
) -> t.PaginatedReposResult:
    prefs = search.preferences()
    readable = search.readable_set()
    facts = search.facts.current()
    ranked = [
        (name, 0)
        for name, (star, bookmark) in prefs.items()
        if (star if starred else bookmark) and name in readable and name in facts
    ]
    return _repo_page(search, facts, ranked, page, t.SortCriteria.RELEVANCE)


def _layers(image: t.ImageSummary) -> list[str]:
    manifests = [m for m in image.Manifests or [] if m is not None]
    if len(manifests) != 1:
        return []
    return manifests[0].layer_digests()


def _related(
    search: Search, image: str, digest: str | None, page: t.PageInput | None, *, derived: bool
) -> t.PaginatedImagesResult:
    repo, tag, _ = split_reference(image)
    if tag is None:
        raise ValueError("no reference provided")
    mine = [i for i in search.images(repo) if i.Tag == tag] if repo in search.readable() else []
    if not mine:
        raise ValueError(f"image {image} not found")
    own = _layers(mine[0])
    found = []
    # only images that share the first layer can be either: the meta DB names those tags,
    # and only they are summarised (not every image of every repository)
    candidates: dict[str, set[str]] = {}
    for name, other_tag in search.db.tagged_starting_with(own[0]) if own else []:
        candidates.setdefault(name, set()).add(other_tag)
    readable = search.readable_set()
    for name in sorted(candidates.keys() & readable):
        for other in search.images(name):
            if other.Tag not in candidates[name]:
                continue
            theirs = _layers(other)
            if not theirs or other.Digest == mine[0].Digest:
                continue
            shorter, longer = (own, theirs) if derived else (theirs, own)
            if len(shorter) < len(longer) and longer[: len(shorter)] == shorter:
                found.append(other)
    results, info = _page(found, page, _image_keys(), t.SortCriteria.RELEVANCE)
    return t.PaginatedImagesResult(Page=info, Results=results)


def build_schema(kind: type[strawberry.Schema] = strawberry.Schema) -> strawberry.Schema:
    return kind(
        query=Query,
        config=strawberry.schema.config.StrawberryConfig(auto_camel_case=False),
        scalar_overrides={datetime: t.TIME},
    )


if __name__ == "__main__":  # python -m ocireg.ext.search.schema > spec/graphql/schema.graphql
    print(build_schema())
