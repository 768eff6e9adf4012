"""The scheduler: priorities, periodic rounds, and one round at a time across processes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ocireg.scheduler import Priority, Scheduler, Snapshot, Task


def test_tasks_run_by_priority_then_in_order() -> None:
    ran: list[str] = []

    async def scenario() -> None:
        scheduler = Scheduler(workers=1)
        futures = []
        for name, priority in [
            ("low", Priority.LOW),
            ("mid1", Priority.MEDIUM),
            ("high", Priority.HIGH),
            ("mid2", Priority.MEDIUM),
        ]:

            async def run(name: str = name) -> None:
                ran.append(name)

            futures.append(scheduler.submit(Task(name, run, priority)))
        await scheduler.start()
        await asyncio.gather(*futures)
        await scheduler.stop()

    asyncio.run(scenario())
    assert ran == ["high", "mid1", "mid2", "low"]


def test_a_failing_task_is_reported_and_the_next_one_runs() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.done: list[tuple[str, bool]] = []
            self.snapshots: list[Snapshot] = []

        def task_done(self, task: Task, seconds: float, error: BaseException | None) -> None:
            self.done.append((task.name, error is not None))

        def changed(self, snapshot: Snapshot) -> None:
            self.snapshots.append(snapshot)

    recorder = Recorder()

    async def scenario() -> None:
        scheduler = Scheduler(workers=1)
        scheduler.listeners.append(recorder)

        async def boom() -> None:
            raise RuntimeError("boom")

        async def fine() -> None:
            pass

        await scheduler.start()
        await asyncio.gather(
            scheduler.submit(Task("boom", boom)), scheduler.submit(Task("ok", fine))
        )
        await scheduler.stop()

    asyncio.run(scenario())
    assert recorder.done == [("boom", True), ("ok", False)]
    assert any(s.busy == 1 for s in recorder.snapshots)
    assert recorder.snapshots[-1].busy == 0


def test_periodic_rounds_run_once_at_a_time_across_schedulers(tmp_path: Path) -> None:
    """Two schedulers on one state directory stand for two worker processes."""
    rounds: list[str] = []
    active = 0
    overlapped = False

    def job_of(owner: str):  # type: ignore[no-untyped-def]
        def job():  # type: ignore[no-untyped-def]
            async def work() -> None:
                nonlocal active, overlapped
                active += 1
                overlapped |= active > 1
                rounds.append(owner)
                await asyncio.sleep(0.05)
                active -= 1

            yield Task(f"tick:{owner}", work)

        return job

    async def scenario() -> None:
        schedulers = [Scheduler(1, tmp_path), Scheduler(1, tmp_path)]
        for owner, scheduler in zip("ab", schedulers, strict=True):
            scheduler.every("tick", 0.3, job_of(owner), first_delay=0)
            await scheduler.start()
        await asyncio.sleep(1.0)
        for scheduler in schedulers:
            await scheduler.stop()

    asyncio.run(scenario())
    assert not overlapped
    assert 3 <= len(rounds) <= 5  # one round per 0.3 s in all, not one per scheduler
    assert (tmp_path / "tick.last").exists()


def test_a_round_is_reported_with_what_its_tasks_returned_and_which_failed() -> None:
    from ocireg.scheduler import Failed, RoundDone

    rounds: list[RoundDone] = []

    async def scenario() -> None:
        scheduler = Scheduler(workers=1)
        scheduler.round_listeners.append(rounds.append)

        def broken(done: RoundDone) -> None:
            raise RuntimeError("a listener's failure stays its own")

        scheduler.round_listeners.append(broken)

        async def boom() -> int:
            raise RuntimeError("boom")

        async def three() -> int:
            return 3

        def job():  # type: ignore[no-untyped-def]
            return [Task("a", three), Task("b", boom), Task("c", three)]

        scheduler.every("job", 60, job, first_delay=0)
        await scheduler.start()
        for _ in range(100):
            if rounds:
                break
            await asyncio.sleep(0.02)
        await scheduler.stop()

    asyncio.run(scenario())
    assert len(rounds) == 1
    done = rounds[0]
    assert done.job == "job" and done.failed == 1
    assert done.results[0] == 3 and done.results[2] == 3
    assert isinstance(done.results[1], Failed) and str(done.results[1].error) == "boom"
    assert abs(done.started - time.time()) < 30 and done.seconds >= 0
