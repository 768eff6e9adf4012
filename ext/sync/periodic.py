"""Periodic sync: every ``pollInterval``, walk the upstream's catalog, keep the repositories and
tags the content rules select, and copy each tag whose manifest is new or changed, then its
referrers. One scheduler task per repository; a round that a restart interrupted is finished
by the next one, which copies only what is still missing (blobs and manifests already stored
are skipped, converted ones recognised by their recorded upstream digest)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ocireg.logs import event
from ocireg.registry.routes import Registries
from ocireg.registry.store import Registry
from ocireg.scheduler import Priority, Task

from .downloads import Source
from .images import Images
from .ondemand import UPSTREAM_FAILURES, Target
from .referrers import Referrers
from .signed import SignedOnly
from .upstream import Fetched

log = logging.getLogger("ocireg.sync")


class RoundMarker:
    """``<root>/.ocireg/sync/<job>.round``: ``running`` from a round's start until its last
    task ends, then ``done``; a process that starts and finds ``running`` was stopped in the
    middle of a round, and finishes it at once instead of one interval later."""

    def __init__(self, directory: Path | None, job: str) -> None:
        self.path = directory / f"{job}.round" if directory is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def interrupted(self) -> bool:
        try:
            return self.path is not None and self.path.read_text() == "running"
        except OSError:
            return False

    def mark(self, state: str) -> None:
        if self.path is not None:
            partial = self.path.with_suffix(".partial")
            partial.write_text(state)
            partial.replace(self.path)


class PeriodicSync:
    def __init__(
        self,
        target: Target,
        registries: Registries,
        images: Images,
        referrers: Referrers,
        signed: SignedOnly,
        marker: RoundMarker | None = None,
        owns: Callable[[str], bool] = lambda _: True,
    ) -> None:
        """``owns``: whether this instance writes a local repository (in a cluster, only the
        owner does, as in zot: every member runs the round, each for its own repositories)."""
        self.owns = owns
        self.target = target
        self.registries = registries
        self.images = images
        self.referrers = referrers
        self.marker = marker or RoundMarker(None, "")
        self.signed = signed

    async def round(self) -> AsyncIterator[Task]:
        """The round's tasks: one per upstream repository the content rules select."""
        upstream = self.target.upstream
        try:
            names = await upstream.catalog()
        except UPSTREAM_FAILURES as error:
            event(
                log, logging.ERROR, "sync catalog failed", upstream=upstream.urls, error=str(error)
            )
            return
        content = self.target.content
        wanted = [n for n in names if content.wanted(n) and self.owns(content.local_name(n))]
        self.marker.mark("running" if wanted else "done")
        left = len(wanted)
        for name in wanted:

            async def run(name: str = name) -> int:
                nonlocal left
                try:
                    return await self.repository(name)
                finally:
                    left -= 1
                    if left == 0:
                        self.marker.mark("done")

            yield Task(f"sync:{name}", run, Priority.LOW)

    async def resume(self) -> int:
        """A whole round now, its tasks one after the other (after an interrupted one)."""
        event(log, logging.INFO, "sync round resumed", upstream=self.target.upstream.urls)
        copied = 0
        async for task in self.round():
            copied += int(await task.run() or 0)  # type: ignore[call-overload]
        return copied

    async def repository(self, name: str) -> int:
        """Copy what is new or changed in one upstream repository; how many tags changed."""
        target, upstream = self.target, self.target.upstream
        local = target.content.local_name(name)
        registry = self.registries.of(local)
        source = Source(upstream, name)
        copied = 0
        try:
            tags = await upstream.tags(name) or []
        except UPSTREAM_FAILURES as error:
            event(log, logging.ERROR, "sync tags failed", repo=name, error=str(error))
            return 0
        for tag in target.content.tags(name, tags):
            try:
                fetched = await upstream.manifest(name, tag)
                if fetched is None:
                    continue
                if not await registry.off_loop(
                    self.images.up_to_date, registry, local, tag, fetched
                ):
                    if not await self._admitted(registry, local, source, fetched, tag, tags):
                        continue
                    preserve = target.settings.preserveDigest or target.settings.onlySigned
                    node = await self.images.plan(source, fetched, preserve)
                    await self.images.copy(registry, local, source, node, [tag])
                    copied += 1
                legacy = target.settings.syncLegacyCosignTags
                copied += await self.referrers.copy(
                    registry, local, source, fetched.digest, legacy, set(tags)
                )
            except UPSTREAM_FAILURES as error:
                event(log, logging.ERROR, "sync tag failed", repo=name, tag=tag, error=str(error))
        event(log, logging.INFO, "sync repository checked", repo=name, local=local, copied=copied)
        return copied

    async def _admitted(
        self,
        registry: Registry,
        local: str,
        source: Source,
        fetched: Fetched,
        tag: str,
        tags: list[str],
    ) -> bool:
        """Whether the tag's image may be copied (``onlySigned``: a signature is trusted)."""
        if not self.target.settings.onlySigned:
            return True
        return await self.signed.admits(registry, local, source, fetched.digest, tag, set(tags))
