"""CVE scanning in a running registry, under ``extensions.search.cve``: the store, the push
observer, the background rounds and the periodic re-reading of the configured sources."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ocireg.extensions.runtime import SetupContext
from ocireg.logs import event
from ocireg.registry.manifests import Manifest
from ocireg.registry.store import QuietObserver
from ocireg.scheduler import Priority, Task

from .attach import attach
from .errors import SourceError
from .importer import update
from .scanning import InventoryOf, Scanner, inventory_seam, rematch
from .store import CveStore

log = logging.getLogger("ocireg.cve")

BACKGROUND_INTERVAL = 900.0  # zot's scan interval (15 minutes) for images no push scanned


@dataclass
class PushObserver(QuietObserver):
    """Records pushed images for the scanner; everything else it is told is not its business
    (a deleted image's results stay with its digest, which another repository may hold)."""

    scanner: Scanner
    submit: Callable[[], None]

    def pushed(
        self,
        repo: str,
        digest: str,
        size: int,
        tags: list[str],
        pusher: str = "",
        manifest: Manifest | None = None,
    ) -> None:
        if manifest is not None and manifest.is_index:
            return  # its images are pushed (and scanned) as themselves
        if self.scanner.want(repo, digest):
            self.submit()


def refresh(store: CveStore, sources: list[str]) -> int:
    """Import every source and match again the images the changes can affect; how many
    images were matched again. A source that cannot be read is logged and skipped."""
    touched: set[tuple[str, str]] = set()
    for source in sources:
        try:
            done = update(store, source)
        except SourceError as exc:
            event(log, logging.WARNING, "cve source unreadable", source=source, error=str(exc))
            continue
        touched |= done.result.touched
        event(log, logging.INFO, "cve source read", source=source, stored=done.result.stored,
              unchanged=done.result.unchanged, rejected=done.rejected.count,
              artifact=done.artifact, pulled=not done.artifact_unchanged)  # fmt: skip
    matched = rematch(store, frozenset(touched))
    event(log, logging.INFO, "cve update done", sources=len(sources), rematched=matched)
    return matched


def start(context: SetupContext, inventory_of: InventoryOf = inventory_seam) -> CveStore:
    """Open the CVE tables beside the meta DB and schedule the scanning."""
    settings = context.settings.cve
    meta = context.app.meta
    path = getattr(meta, "path", None)
    store = CveStore(path if path is not None else ":memory:")
    scanner = Scanner(store, context.registries, inventory_of, context.hooks.scan_listeners)
    scanner.attach_sbom = settings.attachSBOM
    scheduler = context.scheduler

    async def attach_sboms() -> None:
        for sbom in scanner.take_sboms():
            await attach(context.registries, sbom)

    async def scan_pending() -> int:
        done = await asyncio.to_thread(scanner.scan_pending)
        await attach_sboms()
        return done

    def submit() -> None:
        scheduler.submit(Task("cve-scan", scan_pending, Priority.LOW))

    rounds = itertools.count()

    def background() -> list[Task]:
        # the first round after a start also retries failed scans (a layer read while
        # storage was failing); later ones leave them, as zot does
        retry = next(rounds) == 0

        async def run() -> int:
            done = await asyncio.to_thread(scanner.scan_unscanned, meta, retry_failed=retry)
            await attach_sboms()
            return done

        return [Task("cve-background-scan", run, Priority.LOW)]

    context.observe(PushObserver(scanner, submit))
    # the CVE tables are each machine's own (a SQLite file beside the meta DB, even when the
    # meta DB is PostgreSQL), so each machine fills its own: rounds are per machine
    scheduler.every("cve-background-scan", BACKGROUND_INTERVAL, background, first_delay=5.0,
                    across_instances=False)  # fmt: skip
    if settings.sources:

        def sources() -> list[Task]:
            async def run() -> int:
                return await asyncio.to_thread(refresh, store, list(settings.sources))

            return [Task("cve-update", run, Priority.LOW)]

        scheduler.every("cve-update", settings.updateInterval, sources, first_delay=1.0,
                        across_instances=False)  # fmt: skip

    async def close() -> None:
        store.close()

    scheduler.at_stop(close)
    return store
