"""One in-process scheduler for background work: periodic jobs and queued tasks, by priority.

* A :class:`Task` is one unit of work: an async callable that must not block the event loop for
  long (blocking parts go to a thread with ``anyio.to_thread``), with a name and a priority.
* ``submit(task)`` queues a task. ``numWorkers`` worker coroutines take tasks from one priority
  queue (high before medium before low, first come first served within a priority).
* ``every(name, interval, job)`` runs a periodic job: each time it is due, ``job()`` yields the
  tasks of that round (e.g. one per repository); they are queued and the round ends when all are
  done. With several worker processes on one root, a round is claimed under a file lock and a
  shared "last run" stamp in ``<root>/.ocireg/scheduler/``, so each round runs in one process,
  and never two rounds of one job at once.

What happens is logged as JSON lines (logger ``ocireg.scheduler``) and reported to listeners
(the metrics extension turns them into zot's scheduler metrics); each periodic round, with what
its tasks returned and how many failed, is also reported to ``round_listeners`` (the web UI's
operations page keeps the last GC, scrub and sync rounds).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ocireg.logs import event

if TYPE_CHECKING:
    from ocireg.registry.sharedlocks import SharedRounds

log = logging.getLogger("ocireg.scheduler")


class Priority(IntEnum):
    HIGH = 0
    MEDIUM = 1
    LOW = 2


@dataclass(frozen=True)
class Task:
    name: str
    # What it returns says whether it did anything (a count, a bool; None: nothing to say):
    # a periodic round is logged at info only when one of its tasks did something.
    run: Callable[[], Awaitable[object]]
    priority: Priority = Priority.MEDIUM


Job = Callable[[], Iterable[Task] | AsyncIterator[Task]]


@dataclass(frozen=True)
class Failed:
    """What a failed task "returned" to whoever awaits it: false, so it did nothing."""

    error: BaseException

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True)
class RoundDone:
    """One periodic round that ran in this process: when it started (Unix time), how long it
    took, what each task returned (:class:`Failed` for a task that raised)."""

    job: str
    started: float
    seconds: float
    results: tuple[object, ...]

    @property
    def failed(self) -> int:
        return sum(isinstance(result, Failed) for result in self.results)


RoundListener = Callable[[RoundDone], None]


class Listener(Protocol):
    def task_done(self, task: Task, seconds: float, error: BaseException | None) -> None: ...

    def changed(self, snapshot: Snapshot) -> None: ...


@dataclass(frozen=True)
class Snapshot:
    """The scheduler's state: what metrics and logs show."""

    workers: int
    busy: int
    queued: dict[Priority, int]
    jobs: dict[str, tuple[Priority, str]]  # job name -> (priority, waiting | running)


@dataclass(order=True)
class _Queued:
    priority: int
    sequence: int
    task: Task = field(compare=False)
    done: asyncio.Future[object] | None = field(compare=False, default=None)


@dataclass
class _Periodic:
    name: str
    interval: float
    job: Job
    priority: Priority
    first_delay: float
    exclusive: bool = True
    # an exclusive round runs once across instances (claimed in PostgreSQL), or, False, once
    # per machine: for work on state each machine keeps for itself (a local SQLite file)
    across_instances: bool = True
    state: str = "waiting"
    # Seconds to wait before a due round may start (a time window); None: start when due.
    gate: Callable[[], float] | None = None


class Scheduler:
    def __init__(
        self, workers: int = 2, state_dir: Path | None = None, rounds: SharedRounds | None = None
    ) -> None:
        self.workers = workers
        self.state_dir = state_dir
        self.rounds = rounds  # instances on several machines: exclusive rounds claimed there
        self.listeners: list[Listener] = []
        self.round_listeners: list[RoundListener] = []
        self._queue: asyncio.PriorityQueue[_Queued] = asyncio.PriorityQueue()
        self._sequence = itertools.count()
        self._periodic: list[_Periodic] = []
        self._at_start: list[Task] = []
        self._at_stop: list[Callable[[], Awaitable[object]]] = []
        self._running: list[asyncio.Task[None]] = []
        self._busy = 0
        self._queued = dict.fromkeys(Priority, 0)

    # -- registration (before start) ----------------------------------------------------
    def every(
        self,
        name: str,
        interval: float,
        job: Job,
        priority: Priority = Priority.LOW,
        first_delay: float | None = None,
        exclusive: bool = True,
        gate: Callable[[], float] | None = None,
        across_instances: bool = True,
    ) -> None:
        """Run ``job`` every ``interval`` seconds; the first round comes after ``first_delay``
        (default: a random delay of up to 30 s, so restarts do not all fire at once). An
        ``exclusive`` job's round runs in one worker process of those sharing the root;
        otherwise every process runs its own (for work on that process's own state). With
        instances on several machines sharing a PostgreSQL meta DB, an exclusive round runs
        on one of them, unless not ``across_instances``: then on one process per machine
        (for work on state each machine keeps, such as a table in a local SQLite file).
        ``gate()`` says how long a round that is due must still wait (0: start now); the
        next round is then due ``interval`` after the one that started."""
        delay = random.uniform(0, min(30.0, interval)) if first_delay is None else first_delay
        self._periodic.append(
            _Periodic(name, interval, job, priority, delay, exclusive, across_instances, gate=gate)
        )

    def once(self, task: Task) -> None:
        """Queue ``task`` when the scheduler starts (work each process start needs)."""
        self._at_start.append(task)

    def at_stop(self, step: Callable[[], Awaitable[object]]) -> None:
        """Run ``step`` when the scheduler stops, after its tasks are cancelled."""
        self._at_stop.append(step)

    # -- running --------------------------------------------------------------------------
    def submit(self, task: Task) -> asyncio.Future[object]:
        """Queue ``task``; the future completes when it has run (failures are logged, not
        raised)."""
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Queued(task.priority, next(self._sequence), task, done))
        self._queued[task.priority] += 1
        self._changed()
        return done

    async def start(self) -> None:
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        self._running = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        self._running += [asyncio.create_task(self._loop(job)) for job in self._periodic]
        for task in self._at_start:
            self.submit(task)
        event(
            log,
            logging.INFO,
            "scheduler started",
            workers=self.workers,
            jobs=[job.name for job in self._periodic],
        )
        self._changed()

    async def stop(self) -> None:
        for running in self._running:
            running.cancel()
        for running in self._running:
            with contextlib.suppress(asyncio.CancelledError):
                await running
        self._running = []
        for step in self._at_stop:
            try:
                await step()
            except Exception:
                log.exception("a shutdown step failed")

    def snapshot(self) -> Snapshot:
        jobs = {job.name: (job.priority, job.state) for job in self._periodic}
        return Snapshot(self.workers, self._busy, dict(self._queued), jobs)

    def _changed(self) -> None:
        if self.listeners:
            snapshot = self.snapshot()
            for listener in self.listeners:
                listener.changed(snapshot)

    async def _worker(self) -> None:
        while True:
            item = await self._queue.get()
            self._queued[item.task.priority] -= 1
            self._busy += 1
            self._changed()
            started, error, result = time.perf_counter(), None, None
            try:
                result = await item.task.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failing task must not stop the scheduler
                error = exc
                log.exception("task %s failed", item.task.name)
            finally:
                seconds = time.perf_counter() - started
                self._busy -= 1
                if item.done is not None and not item.done.done():
                    item.done.set_result(Failed(error) if error is not None else result)
                for listener in self.listeners:
                    listener.task_done(item.task, seconds, error)
                self._changed()

    async def _loop(self, job: _Periodic) -> None:
        await asyncio.sleep(job.first_delay)
        while True:
            closed = job.gate() if job.gate is not None else 0.0
            if closed > 0:  # due, but outside its time window: asked again once it opens
                await asyncio.sleep(closed)
                continue
            shared = self.state_dir if job.exclusive else None
            with _Claim(shared, job.name, job.interval) as claim:
                next_due = claim.next_due
                if (
                    claim.ours
                    and self.rounds is not None
                    and job.exclusive
                    and job.across_instances
                ):
                    next_due = await self._shared_round(job, self.rounds)
                elif claim.ours:
                    await self._round(job)
                wait = next_due - time.time()
            await asyncio.sleep(max(wait, 0.05))

    async def _shared_round(self, job: _Periodic, rounds: SharedRounds) -> float:
        """Run the round if no other instance ran it within its interval; when it is due."""
        try:
            held = await asyncio.to_thread(rounds.claim, job.name, job.interval)
        except Exception as exc:  # the database is away: no round, asked again soon
            event(log, logging.WARNING, "round not claimed", job=job.name, error=str(exc))
            return time.time() + min(job.interval, 60.0)
        try:
            if held.ours:
                await self._round(job)
        finally:
            await asyncio.shield(asyncio.to_thread(rounds.release, job.name, held))
        return held.next_due

    async def _round(self, job: _Periodic) -> None:
        job.state = "running"
        self._changed()
        started, wall = time.perf_counter(), time.time()
        waiting: list[asyncio.Future[object]] = []
        results: list[object] = []
        try:
            produced = job.job()
            if isinstance(produced, AsyncIterator):
                async for task in produced:
                    waiting.append(self.submit(task))
            else:
                waiting += [self.submit(task) for task in produced]
            results = await asyncio.gather(*waiting)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("periodic job %s failed to produce its tasks", job.name)
        finally:
            job.state = "waiting"
            self._changed()
        seconds = time.perf_counter() - started
        # Idle is silent: a routine round (meta-flush every second, finding nothing) is debug.
        event(
            log,
            logging.INFO if any(results) else logging.DEBUG,
            "scheduler round done",
            job=job.name,
            tasks=len(waiting),
            seconds=round(seconds, 3),
        )
        done = RoundDone(job.name, wall, seconds, tuple(results))
        for listener in self.round_listeners:
            try:
                listener(done)
            except Exception:  # a listener's failure is its own, never the scheduler's
                log.exception("a round listener failed for %s", job.name)


class _Claim:
    """Whether this process runs a periodic job's round now, decided across processes.

    Without a state directory (one process, tests) the round is always ours. With one, a
    non-blocking ``flock`` on ``<job>.lock`` is held for the whole round, and ``<job>.last``
    holds the time the last round started, so a round is due ``interval`` after that in
    every process.
    """

    def __init__(self, state_dir: Path | None, name: str, interval: float) -> None:
        self.state_dir, self.name, self.interval = state_dir, name, interval
        self.ours = False
        self.next_due = time.time() + interval
        self._fd: int | None = None

    def __enter__(self) -> _Claim:
        if self.state_dir is None:
            self.ours = True
            return self
        fd = os.open(self.state_dir / f"{self.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # another process is running this job's round right now
            return self
        self._fd = fd
        stamp = self.state_dir / f"{self.name}.last"
        try:
            last = float(stamp.read_text())
        except (OSError, ValueError):
            last = 0.0
        now = time.time()
        if now - last >= self.interval:
            stamp.write_text(repr(now))
            self.ours, self.next_due = True, now + self.interval
        else:
            self.next_due = last + self.interval
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
