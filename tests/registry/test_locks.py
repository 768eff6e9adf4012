from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from pathlib import Path

from ocireg.registry.locks import KeyedLocks


def _increment_many(lock_dir: str, counter: str, times: int, ephemeral: bool = False) -> None:
    async def run() -> None:
        locks = KeyedLocks(Path(lock_dir))
        for _ in range(times):
            async with locks.hold("repo", ephemeral=ephemeral):
                path = Path(counter)
                value = int(path.read_text())
                await asyncio.sleep(0)
                path.write_text(str(value + 1))

    asyncio.run(run())


def test_lock_excludes_other_processes(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_increment_many, args=(str(tmp_path / "locks"), str(counter), 200))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert counter.read_text() == "600"


def test_lock_excludes_coroutines_and_cleans_up() -> None:
    locks = KeyedLocks(None)
    inside = 0
    peak = 0

    async def task() -> None:
        nonlocal inside, peak
        async with locks.hold("k"):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    async def main() -> None:
        await asyncio.gather(*(task() for _ in range(20)))

    asyncio.run(main())
    assert peak == 1
    assert locks._local == {}


def test_a_cancelled_wait_for_another_holder_leaves_the_lock_free(tmp_path: Path) -> None:
    # flock locks belong to open files, so two KeyedLocks in one process contend like processes
    holder, waiter, later = (KeyedLocks(tmp_path) for _ in range(3))

    async def main() -> None:
        async with holder.hold("k"):

            async def wait() -> None:
                async with waiter.hold("k"):
                    raise AssertionError("got a lock that is held")

            task = asyncio.ensure_future(wait())
            await asyncio.sleep(0.05)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with asyncio.timeout(5):
            async with later.hold("k"):
                pass

    asyncio.run(main())


def test_a_waiting_process_gets_the_lock_when_it_is_released(tmp_path: Path) -> None:
    holder, waiter = KeyedLocks(tmp_path), KeyedLocks(tmp_path)
    order: list[str] = []

    async def main() -> None:
        async def wait() -> None:
            async with waiter.hold("k"):
                order.append("waiter")

        async with holder.hold("k"):
            task = asyncio.ensure_future(wait())
            await asyncio.sleep(0.05)
            order.append("holder")
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert order == ["holder", "waiter"]


def _sweep_until(lock_dir: str, stop: str) -> None:
    locks = KeyedLocks(Path(lock_dir))
    while not Path(stop).exists():
        locks.sweep()


def test_removed_lock_files_still_exclude_other_processes(tmp_path: Path) -> None:
    """Ephemeral locks remove their file on release, and a sweep removes unheld ones, while
    three processes count under the lock: no increment is lost."""
    counter, stop, lock_dir = tmp_path / "counter", tmp_path / "stop", str(tmp_path / "locks")
    counter.write_text("0")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_increment_many, args=(lock_dir, str(counter), 200, True))
        for _ in range(3)
    ]
    sweeper = context.Process(target=_sweep_until, args=(lock_dir, str(stop)))
    for process in [*workers, sweeper]:
        process.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    stop.touch()
    sweeper.join(60)
    assert counter.read_text() == "600"
    assert list(Path(lock_dir).iterdir()) == []


def test_sweep_removes_only_unheld_lock_files(tmp_path: Path) -> None:
    locks = KeyedLocks(tmp_path)

    async def main() -> int:
        async with locks.hold("busy"):
            async with locks.hold("done"):
                pass
            return locks.sweep()

    assert asyncio.run(main()) == 1  # "done"'s file; "busy"'s was held
    assert len(list(tmp_path.iterdir())) == 1
    assert locks.sweep() == 1  # released since
    assert list(tmp_path.iterdir()) == []


def test_a_thread_holding_a_key_excludes_the_coroutines_of_other_lock_users(
    tmp_path: Path,
) -> None:
    """``hold_blocking`` (the dedupe sweep's, from a thread) and ``hold`` (a commit's, on the
    event loop) of one key exclude each other."""
    import threading

    locks, other = KeyedLocks(tmp_path), KeyedLocks(tmp_path)  # as two processes would
    held, release, order = threading.Event(), threading.Event(), []

    def thread() -> None:
        with locks.hold_blocking("digest"):
            held.set()
            release.wait(10)
            order.append("thread")

    async def coroutine() -> None:
        async with other.hold("digest"):
            order.append("coroutine")

    async def main() -> None:
        worker = threading.Thread(target=thread)
        worker.start()
        held.wait(10)
        waiting = asyncio.create_task(coroutine())
        await asyncio.sleep(0.2)
        assert order == []  # the coroutine waits for the thread
        release.set()
        await waiting
        worker.join(10)

    asyncio.run(main())
    assert order == ["thread", "coroutine"]
