"""Background work of a running app: the scheduler, GC on it, and their start and stop.

The scheduler starts with the ASGI lifespan (each worker process has its own) and stops with
it. Periodic jobs coordinate across worker processes through ``<root>/.ocireg/scheduler``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocireg.config import Config
from ocireg.logs import event
from ocireg.meta.db import MetaDB, SQLiteMetaDB
from ocireg.meta.sync import Recorder, sync_all
from ocireg.registry.gc import GarbageCollector
from ocireg.registry.locks import try_exclusive
from ocireg.registry.store import Registry
from ocireg.scheduler import Priority, Scheduler, Task

DEFAULT_WORKERS = 4
log = logging.getLogger("ocireg.background")


def build_scheduler(config: Config, state_dir: Path | None) -> Scheduler:
    workers = config.scheduler.numWorkers if config.scheduler else None
    return Scheduler(workers or DEFAULT_WORKERS, state_dir)


def schedule_gc(
    config: Config, registry: Registry, scheduler: Scheduler, meta: MetaDB
) -> GarbageCollector:
    """GC every ``storage.gcInterval``, one task per repository, when ``storage.gc`` is on,
    applying ``storage.retention`` (which reads push and pull times from the meta DB)."""
    collector = GarbageCollector(
        registry, config.storage.gcDelay, retention=config.storage.retention, meta=meta
    )
    if config.storage.gc and config.storage.gcInterval > 0:

        def round_of_gc() -> Iterator[Task]:
            for repo in registry.repositories():

                async def collect(repo: str = repo) -> None:
                    await collector.collect(repo)

                yield Task(f"gc:{repo}", collect, Priority.MEDIUM)

            async def sweep() -> None:
                await anyio.to_thread.run_sync(registry.dedupe.sweep, config.storage.gcDelay)

            yield Task("gc:dedupe-store", sweep, Priority.MEDIUM)

        scheduler.every("gc", config.storage.gcInterval, round_of_gc)
    return collector


def schedule_dedupe_conversion(
    registry: Registry, scheduler: Scheduler, shared: Path | None
) -> None:
    """At start, bring existing storage to ``storage.dedupe`` (a no-op once it is there)."""
    if shared is None:
        return  # in memory: nothing persists between starts

    async def convert() -> None:
        repositories = registry.repositories()
        marker = shared / "dedupe.json"
        await anyio.to_thread.run_sync(registry.dedupe.convert, repositories, marker)

    scheduler.once(Task("dedupe", convert, Priority.LOW))


# A temporary file whose writer cannot be told alive or gone (another host's, an older name's)
# is orphaned once nothing has written to it for this long; each is filled in one go.
ORPHAN_AGE = 3600.0


def schedule_cleanup(registry: Registry, scheduler: Scheduler, shared: Path | None) -> None:
    """At start, in one process, remove what crashed processes left: lock files nobody holds
    and orphaned temporary files. Upload sessions are GC's (idle for ``storage.gcDelay``)."""
    if shared is None:
        return  # in memory: nothing persists between starts

    def clean() -> None:
        with try_exclusive(shared / "cleanup.lock") as ours:
            if ours:
                locks = registry.locks.sweep()
                temporary = registry.driver.sweep_temporary(ORPHAN_AGE)
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


def start_meta(registry: Registry, scheduler: Scheduler, shared: Path | None) -> MetaDB:
    """The meta DB (``<root>/.ocireg/meta.db``; in memory without a root), brought up to date
    with storage at start by one process, and fed by a recorder that each process flushes."""
    db = SQLiteMetaDB(shared / "meta.db" if shared else ":memory:")
    recorder = Recorder(registry, db)
    registry.observers.append(recorder)
    registry.indexes.listeners.append(recorder.index_saved)

    def sync_if_first() -> None:
        lock = shared / "meta.lock" if shared else None
        if lock is None:
            sync_all(registry, db)
            return
        with try_exclusive(lock) as ours:
            if ours:
                sync_all(registry, db)

    async def sync() -> None:
        await anyio.to_thread.run_sync(sync_if_first)

    async def flush() -> None:
        await anyio.to_thread.run_sync(recorder.flush)

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
