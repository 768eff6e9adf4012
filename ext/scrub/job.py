"""The periodic scrub: one low-priority task per repository, one log line per image."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from ocireg.extensions.runtime import SetupContext
from ocireg.logs import event
from ocireg.registry.offloop import run_storage_work
from ocireg.registry.scrub import ScrubResult, scrub_repository
from ocireg.registry.store import Registry
from ocireg.scheduler import Priority, Task

from . import ScrubSettings

log = logging.getLogger("ocireg.scrub")


def report(result: ScrubResult) -> None:
    level = logging.INFO if result.ok else logging.ERROR
    event(
        log,
        level,
        "scrub",
        repo=result.repo,
        reference=result.reference,
        status=result.status,
        affectedBlob=result.affected_blob,
        error=result.error,
    )


async def scrub(registry: Registry, repo: str) -> int:
    """Check one repository's images; how many failed their check (a round's result)."""
    # storage work (on S3, a request per blob): on storage's threads (ocireg.registry.offloop)
    results = await run_storage_work(True, lambda: list(scrub_repository(registry, repo)))
    for result in results:
        report(result)
    return sum(not result.ok for result in results)


def setup(context: SetupContext) -> None:
    settings: ScrubSettings = context.settings
    registries = context.registries

    async def round_of_scrub() -> AsyncIterator[Task]:
        # the walk of every root is storage work: off the loop (on S3, a listing per folder)
        for repo in await run_storage_work(True, registries.repositories):

            async def run(repo: str = repo) -> int:
                return await scrub(registries.of(repo), repo)

            yield Task(f"scrub:{repo}", run, Priority.LOW)

    context.scheduler.every("scrub", settings.interval, round_of_scrub, Priority.LOW)
