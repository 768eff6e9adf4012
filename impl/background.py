"""Background work of a running app: the scheduler, GC on it, and their start and stop.

The scheduler starts with the ASGI lifespan (each worker process has its own) and stops with
it. Periodic jobs coordinate across worker processes through ``<root>/.ocireg/scheduler``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocireg.config import Config, RootConfig
from ocireg.logs import event
from ocireg.meta.db import MetaDB
from ocireg.meta.sync import Recorder, sync_all
from ocireg.registry.gc import GarbageCollector
from ocireg.registry.locks import try_exclusive
from ocireg.registry.offloop import run_storage_work
from ocireg.registry.routes import Registries
from ocireg.registry.sharedlocks import AdvisoryLocks, SharedRounds
from ocireg.registry.store import Registry
from ocireg.scheduler import Priority, Scheduler, Task

DEFAULT_WORKERS = 4
log = logging.getLogger("ocireg.background")


def build_scheduler(config: Config, state_dir: Path | None) -> Scheduler:
    workers = config.scheduler.numWorkers if config.scheduler else None
    postgres = config.storage.postgres()
    # instances sharing a PostgreSQL meta DB: a GC, scrub, retention or sync round runs on one
    rounds = SharedRounds(AdvisoryLocks(postgres.url)) if postgres is not None else None
    return Scheduler(workers or DEFAULT_WORKERS, state_dir, rounds)


@dataclass(frozen=True)
class Root:
    """A storage root with the section of the configuration that describes it."""

    key: str  # "storage" or "storage.subPaths./team"
    settings: RootConfig
    registry: Registry


def roots(config: Config, registries: Registries) -> list[Root]:
    found = [Root("storage", config.storage, registries.default)]
    for key, sub in (config.storage.subPaths or {}).items():
        found.append(Root(f"storage.subPaths.{key}", sub, registries.routes[key.removeprefix("/")]))
    return found


def schedule_gc(
    config: Config, registries: Registries, scheduler: Scheduler, meta: MetaDB
) -> GarbageCollector:
    """GC of each storage root with its own settings; returns the main root's collector,
    whose ``listeners`` every root's collector shares."""
    collectors = [_schedule_root_gc(root, scheduler, meta) for root in roots(config, registries)]
    for collector in collectors[1:]:
        collector.listeners = collectors[0].listeners
    return collectors[0]


def _schedule_root_gc(root: Root, scheduler: Scheduler, meta: MetaDB) -> GarbageCollector:
    """GC every ``gcInterval``, one task per repository, when ``gc`` is on, applying
    ``retention`` (which reads push and pull times from the meta DB); with ``gcTimeWindow``,
    a round starts only inside the window."""
    settings, registry = root.settings, root.registry
    collector = GarbageCollector(
        registry, settings.gcDelay, retention=settings.retention, meta=meta
    )
    if settings.gc and settings.gcInterval > 0:

        async def round_of_gc() -> AsyncIterator[Task]:
            # the walk of the root is storage work: off the loop (on S3, a listing per folder)
            for repo in await run_storage_work(True, registry.repositories):

                async def collect(repo: str = repo) -> int:
                    # the bytes it freed: what a round did, for its log line and its record
                    collected = await collector.collect(repo)
                    return sum(removed.size for removed in collected.files)

                yield Task(f"gc:{repo}", collect, Priority.MEDIUM)

            async def sweep() -> None:
                await anyio.to_thread.run_sync(registry.dedupe.sweep, settings.gcDelay)

            yield Task(f"gc:dedupe-store:{root.key}", sweep, Priority.MEDIUM)

        window = settings.time_window()
        gate = window.seconds_until_open if window is not None else None
        name = "gc" if root.key == "storage" else f"gc:{root.key}"
        scheduler.every(name, settings.gcInterval, round_of_gc, gate=gate)
    return collector


def schedule_dedupe_conversion(
    config: Config, registries: Registries, scheduler: Scheduler, shared: Path | None
) -> None:
    """At start, bring each root's existing storage to its ``dedupe`` (a no-op once there)."""
    if shared is None:
        return  # in memory: nothing persists between starts
    for root in roots(config, registries):
        # on s3 the record is in the bucket (see registry.refdedupe), this one unused
        marker = root.settings.resolved_root() / ".ocireg" / "dedupe.json"
        if root.key == "storage":
            marker = shared / "dedupe.json"

        async def convert(registry: Registry = root.registry, marker: Path = marker) -> None:
            def walk_and_convert() -> None:
                registry.dedupe.convert(registry.repositories(), marker)

            await anyio.to_thread.run_sync(walk_and_convert)

        scheduler.once(Task(f"dedupe:{root.key}", convert, Priority.LOW))


# A temporary file whose writer cannot be told alive or gone (another host's, an older name's)
# is orphaned once nothing has written to it for this long; each is filled in one go.
ORPHAN_AGE = 3600.0


def schedule_cleanup(registries: Registries, scheduler: Scheduler, shared: Path | None) -> None:
    """At start, in one process, remove what crashed processes left: lock files nobody holds
    and orphaned temporary files, in every storage root. Upload sessions are GC's (idle for
    ``storage.gcDelay``)."""
    if shared is None:
        return  # in memory: nothing persists between starts

    def clean() -> None:
        with try_exclusive(shared / "cleanup.lock") as ours:
            if ours:
                roots = registries.roots()
                locks = roots[0].locks.sweep()  # one lock directory for every root
                temporary = sum(root.driver.sweep_temporary(ORPHAN_AGE) for root in roots)
                event(
                    log,
                    logging.INFO,
                    "start-up cleanup done",
                    lockFiles=locks,
                    temporaryFiles=temporary,
                )

    async def cleanup() -> None:
        await anyio.to_thread.run_sync(clean)

    scheduler.once(Task("cleanup", cleanup, Priority.LOW))


class Lifespan:
    """Starts the scheduler when the server starts the app and stops it when it stops."""

    def __init__(self, app: ASGIApp, scheduler: Scheduler) -> None:
        self.app = app
        self.scheduler = scheduler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def receive_and_act() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.scheduler.start()
            elif message["type"] == "lifespan.shutdown":
                await self.scheduler.stop()
            return message

        await self.app(scope, receive_and_act, send)


META_FLUSH_SECONDS = 1.0


def start_meta(
    registries: Registries, scheduler: Scheduler, shared: Path | None, db: MetaDB
) -> MetaDB:
    """The meta DB (one for every storage root; see ``ocireg.meta.backends``), brought up to
    date with storage at start by one process, and fed by a recorder that each process
    flushes."""
    recorder = Recorder(registries, db)
    for root in registries.roots():
        root.observers.append(recorder)
        root.reference_index = db
        root.indexes.listeners.append(recorder.index_saved)

    def sync_if_first() -> None:
        lock = shared / "meta.lock" if shared else None
        if lock is None:
            sync_all(registries, db)
            return
        with try_exclusive(lock) as ours:
            if ours:
                sync_all(registries, db)

    async def sync() -> None:
        await anyio.to_thread.run_sync(sync_if_first)

    async def flush() -> int:
        return await anyio.to_thread.run_sync(recorder.flush)

    scheduler.once(Task("meta-sync", sync, Priority.HIGH))
    scheduler.every(
        "meta-flush",
        META_FLUSH_SECONDS,
        lambda: [Task("meta-flush", flush, Priority.HIGH)],
        Priority.HIGH,
        first_delay=META_FLUSH_SECONDS,
        exclusive=False,
    )
    scheduler.at_stop(flush)
    return db
