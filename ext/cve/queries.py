"""The CVE queries of zot's search schema, over the stored scan results.

An image reference names one image manifest or an index: an index's CVEs are those of its
images together. A query about an image never scanned answers an error saying so, and its
``Vulnerabilities`` summary has ``MaxSeverity`` "" (zot's "not scanned"), never a clean "NONE".
"""

from __future__ import annotations

from ..search import types as t
from ..search.schema import CVE_DISABLED, Search, split_reference
from .answers import Merged, complete, keep, of_images, scanned, summary
from .severity import RANK
from .store import CveStore


def store_of(search: Search) -> CveStore:
    if search.cve is None:
        raise ValueError(CVE_DISABLED)
    return search.cve


def manifest_digests(image: t.ImageSummary) -> list[str]:
    """The image manifests an image summary stands for (itself, or an index's images)."""
    found = [m.Digest for m in image.Manifests or [] if m is not None and m.Digest]
    return found or ([image.Digest] if image.Digest else [])


def find_image(search: Search, reference: str) -> t.ImageSummary:
    repo, tag, digest = split_reference(reference)
    if tag is None and digest is None:
        raise ValueError("no reference provided")
    if repo in search.readable():
        for image in search.images(repo):
            if (tag is not None and image.Tag == tag) or (digest and image.Digest == digest):
                return image
    raise ValueError(f"image {reference} not found")


def _scanned_cves(store: CveStore, image: t.ImageSummary, reference: str) -> list[Merged]:
    found = of_images(store, manifest_digests(image))
    if found is None:
        raise ValueError(f"image {reference} has not been scanned yet")
    return found


def _summary(found: list[Merged]) -> t.ImageVulnerabilitySummary:
    return summary(cve.severity for cve in found)


def _cve_page(
    store: CveStore, found: list[Merged], page: t.PageInput | None
) -> tuple[list[t.CVE], t.PageInfo]:
    """zot's CVE orders: SEVERITY (default; highest first, then by ID), ALPHABETIC_ASC/DSC."""
    page = page or t.PageInput()
    if (page.limit or 0) < 0 or (page.offset or 0) < 0:
        raise ValueError("limit and offset must not be negative")
    criteria = page.sortBy or t.SortCriteria.SEVERITY
    if criteria == t.SortCriteria.SEVERITY:
        ordered = sorted(found, key=lambda c: (-RANK.get(c.severity, 0), c.id))
    elif criteria in (t.SortCriteria.ALPHABETIC_ASC, t.SortCriteria.ALPHABETIC_DSC):
        descending = criteria == t.SortCriteria.ALPHABETIC_DSC
        ordered = sorted(found, key=lambda c: c.id, reverse=descending)
    else:
        raise ValueError(f"sorting by {criteria.value} is not supported here")
    start = page.offset or 0
    chosen = ordered[start : start + page.limit] if page.limit else ordered[start:]
    page_info = t.PageInfo(TotalCount=len(found), ItemCount=len(chosen))
    return [cve.graphql() for cve in complete(store, chosen)], page_info


def cve_list_for_image(
    search: Search,
    image: str,
    page: t.PageInput | None,
    searched: str | None,
    excluded: str | None,
    severity: str | None,
) -> t.CVEResultForImage:
    store = store_of(search)
    found = find_image(search, image)
    kept = keep(store, _scanned_cves(store, found, image), searched, excluded, severity)
    chosen, info = _cve_page(store, kept, page)
    return t.CVEResultForImage(
        Tag=found.Tag, CVEList=list(chosen), Summary=_summary(kept), Page=info
    )


def _identified(search: Search, wanted: t.ImageInput) -> tuple[t.ImageSummary, t.ImageIdentifier]:
    if wanted.Digest:
        image = find_image(search, f"{wanted.Repo}@{wanted.Digest}")
    else:
        image = find_image(search, f"{wanted.Repo}:{wanted.Tag}")
    platform = None
    if wanted.Platform is not None:
        platform = t.Platform(Os=wanted.Platform.Os, Arch=wanted.Platform.Arch)
    return image, t.ImageIdentifier(
        Repo=wanted.Repo, Tag=wanted.Tag, Digest=wanted.Digest or image.Digest, Platform=platform
    )


def _platform_digests(image: t.ImageSummary, wanted: t.ImageInput) -> list[str]:
    """An index narrowed to the platform asked for, when one is."""
    if wanted.Platform is None:
        return manifest_digests(image)
    chosen = [
        m.Digest
        for m in image.Manifests or []
        if m is not None
        and m.Digest
        and m.Platform is not None
        and (not wanted.Platform.Os or m.Platform.Os == wanted.Platform.Os)
        and (not wanted.Platform.Arch or m.Platform.Arch == wanted.Platform.Arch)
    ]
    return chosen or manifest_digests(image)


def cve_diff(
    search: Search,
    minuend: t.ImageInput,
    subtrahend: t.ImageInput,
    page: t.PageInput | None,
    searched: str | None,
    excluded: str | None,
) -> t.CVEDiffResult:
    """The CVEs of ``minuend`` that ``subtrahend`` does not have."""
    store = store_of(search)
    first, first_id = _identified(search, minuend)
    second, second_id = _identified(search, subtrahend)
    mine = of_images(store, _platform_digests(first, minuend))
    theirs = of_images(store, _platform_digests(second, subtrahend))
    for found, wanted in ((mine, minuend), (theirs, subtrahend)):
        if found is None:
            raise ValueError(f"image {wanted.Repo}:{wanted.Tag} has not been scanned yet")
    assert mine is not None and theirs is not None
    known = {cve.id for cve in theirs}
    kept = keep(store, [c for c in mine if c.id not in known], searched, excluded, None)
    chosen, info = _cve_page(store, kept, page)
    return t.CVEDiffResult(
        Minuend=first_id,
        Subtrahend=second_id,
        CVEList=list(chosen),
        Summary=_summary(kept),
        Page=info,
    )


def _passes(image: t.ImageSummary, wanted: t.Filter | None) -> bool:
    if wanted is None:
        return True
    platforms = [m.Platform for m in image.Manifests or [] if m is not None and m.Platform]
    if wanted.Os and not any(p.Os in wanted.Os for p in platforms):
        return False
    if wanted.Arch and not any(p.Arch in wanted.Arch for p in platforms):
        return False
    return not wanted.HasToBeSigned or bool(image.IsSigned)


def images_for_cve(search: Search, cve: str, wanted: t.Filter | None) -> list[t.ImageSummary]:
    store = store_of(search)
    holding = store.images_with(cve.strip())
    found = [
        image
        for repo in search.readable()
        for image in search.images(repo)
        if holding.intersection(manifest_digests(image)) and _passes(image, wanted)
    ]
    return found


def images_with_cve_fixed(
    search: Search, cve: str, repo: str, wanted: t.Filter | None
) -> list[t.ImageSummary]:
    """The scanned tags of ``repo`` the CVE is not found in (zot: fixed, or never there)."""
    store = store_of(search)
    if repo not in search.readable():
        return []
    holding = store.images_with(cve.strip())
    found = []
    for image in search.images(repo):
        digests = manifest_digests(image)
        if not scanned(store, digests):
            continue  # never scanned: nothing is known, least of all a fix
        if not holding.intersection(digests) and _passes(image, wanted):
            found.append(image)
    return found
