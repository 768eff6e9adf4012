"""On-demand sync: what a pull misses is fetched from the first upstream that has it.

* A pull by tag asks the upstream at most once per ``manifestCheckInterval`` per tag; when the
  upstream's manifest differs from the stored one, the pull is answered with the upstream's (as
  converted) at once and the image is stored in the background.
* A pull by digest is served from storage; a miss asks the upstream (a converted digest is
  looked up as the upstream digest it came from).
* A blob miss joins the download of that blob if one runs (the image being stored), or starts
  one; the pull streams the bytes as they are stored.
* A referrers list first copies the upstream's referrers of that subject (at most once per
  interval).
* Identical requests made at once share one upstream request (single flight).

An upstream that fails is logged and skipped: a pull that storage can answer is answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from ocireg.digests import Digest
from ocireg.errors import RegistryError
from ocireg.logs import event
from ocireg.names import is_tag
from ocireg.registry.ondemand import BlobSource, ServedManifest
from ocireg.registry.store import Registry

from .content import Content
from .downloads import Downloads, Source
from .images import Images
from .referrers import Referrers
from .settings import UpstreamRegistry
from .signed import SignedOnly
from .upstream import Upstream, UpstreamError

log = logging.getLogger("ocireg.sync")
T = TypeVar("T")
# What an upstream can do wrong, beyond failing to answer: answer what does not parse (bad
# JSON, a manifest refused here). Caught here, so a pull is never a 500 because of it.
UPSTREAM_FAILURES = (UpstreamError, RegistryError, ValueError, httpx.HTTPError)


@dataclass(frozen=True)
class Target:
    settings: UpstreamRegistry
    upstream: Upstream
    content: Content


class OnDemandSync:
    def __init__(
        self,
        targets: list[Target],
        images: Images,
        downloads: Downloads,
        referrers: Referrers,
        signed: SignedOnly,
    ) -> None:
        self.targets = targets
        self.signed = signed
        self.images = images
        self.downloads = downloads
        self.referrers_copier = referrers
        self._checked: dict[tuple[str, int, str, str], float] = {}
        self._flights: dict[tuple[str, int, str, str], asyncio.Task[Any]] = {}

    def _sources(self, repo: str) -> list[tuple[Target, Source]]:
        found = []
        for target in self.targets:
            name = target.content.upstream_name(repo)
            if name is not None:
                found.append((target, Source(target.upstream, name)))
        return found

    async def _once(self, key: tuple[str, int, str, str], work: Callable[[], Awaitable[T]]) -> T:
        """``work()``, shared by every caller asking the same ``key`` meanwhile."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(work())
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._flights.pop(key, None))
        result: T = await asyncio.shield(flight)
        return result

    def _due(self, key: tuple[str, int, str, str], interval: float) -> bool:
        last = self._checked.get(key)
        return last is None or time.monotonic() - last >= interval

    # -- manifests ------------------------------------------------------------------------
    async def manifest(
        self, registry: Registry, repo: str, reference: str
    ) -> ServedManifest | None:
        if is_tag(reference):
            key = ("tag", id(registry), repo, reference)
            return await self._once(key, lambda: self._tag(registry, repo, reference, key))
        node = self.images.inflight(registry, repo, reference)
        if node is not None:
            return node.served()
        key = ("digest", id(registry), repo, reference)
        return await self._once(key, lambda: self._digest(registry, repo, reference))

    async def _tag(
        self, registry: Registry, repo: str, tag: str, key: tuple[str, int, str, str]
    ) -> ServedManifest | None:
        storing = self.images.inflight_tag(registry, repo, tag)
        sources = self._sources(repo)
        interval = min((t.settings.manifestCheckInterval for t, _ in sources), default=0.0)
        if not sources or not self._due(key, interval):
            return storing.served() if storing is not None else None
        self._checked[key] = time.monotonic()
        for target, source in sources:
            try:
                fetched = await source.upstream.manifest(source.repo, tag)
                if fetched is None:
                    continue
                if await registry.off_loop(self.images.up_to_date, registry, repo, tag, fetched):
                    return None
                if not await self._admitted(target, registry, repo, source, fetched.digest, tag):
                    continue
                node = await self.images.plan(source, fetched, _preserve(target))
            except UPSTREAM_FAILURES as error:
                _failed(source, tag, error)
                continue
            task = self.images.start_copy(registry, repo, source, node, [tag])
            # a copy that fails is tried again by the next pull, not one interval later
            task.add_done_callback(lambda t: self._forget_failed(t, key))
            return node.served()
        return None

    async def _admitted(
        self,
        target: Target,
        registry: Registry,
        repo: str,
        source: Source,
        digest: str,
        reference: str,
    ) -> bool:
        if not target.settings.onlySigned:
            return True
        return await self.signed.admits(registry, repo, source, digest, reference)

    def _forget_failed(self, task: asyncio.Task[None], key: tuple[str, int, str, str]) -> None:
        if task.cancelled() or task.exception() is not None:
            self._checked.pop(key, None)

    async def _digest(self, registry: Registry, repo: str, digest: str) -> ServedManifest | None:
        source_digest = self.images.conversions.source(repo, digest) or digest
        for target, source in self._sources(repo):
            try:
                fetched = await source.upstream.manifest(source.repo, source_digest)
                if fetched is None:
                    continue
                if not await self._admitted(target, registry, repo, source, fetched.digest, digest):
                    continue
                preserve = _preserve(target)
                node = await self.images.plan(source, fetched, preserve)
                if node.digest != digest:  # asked by its upstream digest: kept as it is
                    node = await self.images.plan(source, fetched, preserve=True)
            except UPSTREAM_FAILURES as error:
                _failed(source, digest, error)
                continue
            self.images.start_copy(registry, repo, source, node, [])
            return node.served()
        return None

    # -- blobs ----------------------------------------------------------------------------
    async def blob(self, registry: Registry, repo: str, digest: Digest) -> BlobSource | None:
        for target, source in self._sources(repo):
            if target.settings.onlySigned and not self.images.wants_blob(registry, repo, digest):
                continue  # only the blobs of an admitted image being stored, not any blob
            download = self.downloads.start(registry, repo, digest, source)
            served = await self.downloads.serve(download)
            if served is not None:
                return served
        return None

    # -- referrers ------------------------------------------------------------------------
    async def referrers(self, registry: Registry, repo: str, digest: Digest) -> None:
        key = ("referrers", id(registry), repo, str(digest))
        await self._once(key, lambda: self._referrers(registry, repo, str(digest), key))

    async def _referrers(
        self, registry: Registry, repo: str, digest: str, key: tuple[str, int, str, str]
    ) -> None:
        sources = self._sources(repo)
        interval = min((t.settings.manifestCheckInterval for t, _ in sources), default=0.0)
        if not sources or not self._due(key, interval):
            return
        self._checked[key] = time.monotonic()
        for target, source in sources:
            if target.settings.onlySigned and not await registry.off_loop(
                _holds, registry, repo, digest
            ):
                continue  # the referrers of an image not admitted here are not copied either
            try:
                subject = self.images.conversions.source(repo, digest) or digest
                await self.referrers_copier.copy(registry, repo, source, subject)
            except UPSTREAM_FAILURES as error:
                _failed(source, f"referrers of {digest}", error)


def _holds(registry: Registry, repo: str, digest: str) -> bool:
    index = registry.index(repo)
    return index is not None and digest in index.by_digest


def _preserve(target: Target) -> bool:
    """Keep the upstream's digest: asked, or under onlySigned (the signatures name it)."""
    return target.settings.preserveDigest or target.settings.onlySigned


def _failed(source: Source, what: str, error: Exception) -> None:
    event(
        log,
        logging.WARNING,
        "sync on demand failed",
        upstream=source.upstream.urls,
        repo=source.repo,
        reference=what,
        error=str(error),
    )
