"""Repository locks and the scheduler's rounds, shared through PostgreSQL advisory locks: two
lock sets or schedulers that share no directory (two machines) still exclude each other."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocireg.registry.locks import KeyedLocks
from ocireg.registry.sharedlocks import AdvisoryLocks, SharedRounds, lock_id
from ocireg.scheduler import Scheduler, Task
from tests.integration.test_meta_postgres import pg_rows
from tests.postgres import Postgres, postgres

__all__ = ["postgres"]  # the session fixture, used here by name


def test_lock_ids_are_stable_signed_64_bit_and_distinct() -> None:
    assert lock_id("repo/a") == lock_id("repo/a") != lock_id("repo/b")
    assert all(-(2**63) <= lock_id(k) < 2**63 for k in ("", "x", "repo/a" * 100))


def test_two_machines_exclude_each_other(tmp_path: Path, postgres: Postgres) -> None:
    url = postgres.new_database()
    shared = AdvisoryLocks(url), AdvisoryLocks(url)
    one, two = KeyedLocks(tmp_path / "one", shared[0]), KeyedLocks(tmp_path / "two", shared[1])
    order: list[str] = []

    async def scenario() -> None:
        async with one.hold("repo/a"):
            order.append("one holds")
            waiter = asyncio.create_task(second())
            await asyncio.sleep(0.5)
            assert not waiter.done()  # waits for the other machine
            async with two.hold("repo/b"):  # another key is free
                order.append("two holds b")
            order.append("one lets go")
        await asyncio.wait_for(waiter, 30)

    async def second() -> None:
        async with two.hold("repo/a"):
            order.append("two holds a")

    asyncio.run(scenario())
    for locks in shared:
        locks.close()
    assert order == ["one holds", "two holds b", "one lets go", "two holds a"]


def test_a_cancelled_wait_leaves_the_lock_free(tmp_path: Path, postgres: Postgres) -> None:
    url = postgres.new_database()
    shared = AdvisoryLocks(url), AdvisoryLocks(url)
    one, two = KeyedLocks(tmp_path / "one", shared[0]), KeyedLocks(tmp_path / "two", shared[1])

    async def scenario() -> None:
        async with one.hold("k"):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    async with two.hold("k"):
                        raise AssertionError("held by the other machine")
        async with asyncio.timeout(30):  # the abandoned wait got it later, and let it go
            async with two.hold("k"), asyncio.timeout(30):
                pass
            async with one.hold("k"):
                pass

    asyncio.run(scenario())
    for locks in shared:
        locks.close()


def _two_instances_run(
    tmp_path: Path, url: str, job: str, settle: float, **every: Any
) -> list[str]:
    """Schedule ``job`` hourly, due now, on two schedulers with state directories apart (two
    machines) sharing the database at ``url``; the owners whose rounds ran, once at least one
    did and ``settle`` seconds passed (or both did)."""
    shared = AdvisoryLocks(url), AdvisoryLocks(url)
    rounds: list[str] = []

    def job_of(owner: str) -> Callable[[], list[Task]]:
        async def work() -> None:
            rounds.append(owner)

        return lambda: [Task(f"{job}:{owner}", work)]

    async def scenario() -> None:
        schedulers = [
            Scheduler(1, tmp_path / name, SharedRounds(locks))
            for name, locks in zip(("one", "two"), shared, strict=True)
        ]
        for owner, scheduler in zip(("one", "two"), schedulers, strict=True):
            scheduler.every(job, 3600, job_of(owner), first_delay=0, **every)
            await scheduler.start()
        deadline = time.monotonic() + 30
        while not rounds and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        deadline = time.monotonic() + settle  # the other had every chance to run one
        while len(rounds) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for scheduler in schedulers:
            await scheduler.stop()

    try:
        asyncio.run(scenario())
    finally:
        for locks in shared:
            locks.close()
    return rounds


def test_a_periodic_round_runs_on_one_instance(tmp_path: Path, postgres: Postgres) -> None:
    """The round is claimed in the database, so it runs once, and the other instance learns
    when it is due next."""
    url = postgres.new_database()
    assert len(_two_instances_run(tmp_path, url, "tick", settle=1.0)) == 1
    (last,) = pg_rows(url, "SELECT last FROM scheduler_rounds WHERE job = 'tick'")
    assert abs(last[0] - time.time()) < 60


def test_a_round_of_state_kept_per_machine_runs_on_each_instance(
    tmp_path: Path, postgres: Postgres
) -> None:
    """A job whose state is each machine's own (``across_instances=False``, the CVE tables)
    runs its round on every instance, still once per machine."""
    url = postgres.new_database()
    rounds = _two_instances_run(tmp_path, url, "local", settle=30, across_instances=False)
    assert sorted(rounds) == ["one", "two"]
    assert pg_rows(url, "SELECT to_regclass('scheduler_rounds')") == [(None,)]  # never claimed
