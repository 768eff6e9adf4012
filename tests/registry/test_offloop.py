"""Work kept off the event loop: storage's requests and a database's each have threads of
their own, and a caller waits for its work to end even when it is cancelled."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ocireg.registry.offloop import STORAGE_THREADS, run_database_work, run_storage_work


def test_local_work_runs_on_the_loop() -> None:
    async def run() -> tuple[int, int]:
        here = threading.get_ident()
        storage = await run_storage_work(False, threading.get_ident)
        database = await run_database_work(False, threading.get_ident)
        assert storage == database == here
        return storage, database

    asyncio.run(run())


def test_a_silent_database_leaves_storage_its_threads() -> None:
    """More database calls than storage has threads, all waiting on a server that does not
    answer: storage work still runs at once, and the loop with it."""
    answer = threading.Event()

    def silent() -> str:
        assert answer.wait(10), "never answered"
        return "answered"

    async def run() -> None:
        waiting = [
            asyncio.create_task(run_database_work(True, silent)) for _ in range(STORAGE_THREADS + 4)
        ]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        assert await run_storage_work(True, lambda: "stored") == "stored"
        assert time.monotonic() - started < 1
        assert not any(task.done() for task in waiting)
        answer.set()
        assert await asyncio.gather(*waiting) == ["answered"] * (STORAGE_THREADS + 4)

    asyncio.run(run())


def test_a_cancelled_caller_waits_for_its_work_to_end() -> None:
    ended = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        ended.set()

    async def run() -> None:
        task = asyncio.create_task(run_database_work(True, slow))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ended.is_set(), "cancelled before its work ended"

    asyncio.run(run())
