"""The sender: delivers the outbox, at least once, in order per repository.

One process delivers at a time: the sender process holding the lock (see :mod:`.process`,
which calls ``run``), or, for a registry whose meta DB is in memory, the scheduler's ``round``.
Each sink is drained on its own, so a slow or hung sink holds up no other. Draining a sink:

1. trims the sink's backlog to its ``maxQueued`` (the oldest go; counted as dropped, logged);
2. takes the repositories whose oldest pending event is due (at most ``PARALLEL``), and for
   each, that event and up to ``RUN - 1`` after it; it delivers each repository's run in
   order, stopping at its first failure, the repositories concurrently, then marks what was
   sent and what failed;
3. repeats while there is due work, for at most ``BUDGET_SECONDS``.

A failed delivery is due again after a back-off (``backoff``: 0.5 s doubling up to 5 minutes,
with jitter), and until then its repository's later events wait behind it. A sink that stays
down costs a push nothing: pushes only write the outbox. Undelivered events stay in the meta DB
file, so a restart (or a SIGKILL) resumes where delivery stopped; an event that was delivered
but not yet marked is sent again, under the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import anyio.to_thread

from ocireg.logs import event as log_event
from ocireg.scheduler import Priority, Scheduler, Task

from .sinks import Delivery, DeliveryError, delivery_for
from .sinkset import Target
from .store import Due, Outbox

log = logging.getLogger("ocireg.events")

ROUND_SECONDS = 0.2
BUDGET_SECONDS = 5.0
PARALLEL = 16
RUN = 32
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 300.0


def backoff(attempts: int) -> float:
    """Seconds before the next try of a delivery that has failed ``attempts + 1`` times."""
    base: float = min(BACKOFF_FIRST * 2.0 ** min(attempts, 20), BACKOFF_MAX)
    return base * random.uniform(0.8, 1.2)


class Sender:
    def __init__(self, outbox: Outbox, targets: list[Target], source: str) -> None:
        self.outbox = outbox
        self.targets = targets
        self.source = source
        self._deliveries: dict[str, Delivery] = {}
        self._counted: dict[str, tuple[int, int]] = {}  # sink: (queued, last seq) at a count

    def schedule(self, scheduler: Scheduler) -> None:
        """Deliver from this process's scheduler (a registry whose meta DB is in memory; with
        a file, a process of its own delivers: see :mod:`.process`)."""
        scheduler.once(Task("events-forget", self.forget_unconfigured, Priority.HIGH))
        scheduler.every(
            "events-send",
            ROUND_SECONDS,
            lambda: [Task("events-send", self.round, Priority.HIGH)],
            Priority.HIGH,
            first_delay=0.0,
        )
        scheduler.at_stop(self.close)

    async def forget_unconfigured(self) -> int:
        keys = [target.key for target in self.targets]
        gone = await anyio.to_thread.run_sync(self.outbox.forget_sinks_except, keys)
        if gone:
            log_event(
                log,
                logging.WARNING,
                "events dropped for sinks no longer configured",
                deliveries=gone,
            )
        return gone

    async def round(self) -> int:
        """Deliver what is due; how many events were delivered."""
        deadline = time.monotonic() + BUDGET_SECONDS
        sent = await asyncio.gather(*(self._drain(target, deadline) for target in self.targets))
        return sum(sent)

    async def run(self, stop: asyncio.Event, idle: float) -> None:
        """Deliver until ``stop`` is set, each sink on its own, so a slow or hung sink holds
        up no other; a sink with nothing due looks again after ``idle`` seconds."""
        await asyncio.gather(*(self._keep_draining(target, stop, idle) for target in self.targets))

    async def _keep_draining(self, target: Target, stop: asyncio.Event, idle: float) -> None:
        while not stop.is_set():
            if not await self._drain(target, time.monotonic() + BUDGET_SECONDS, stop):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle)

    async def close(self) -> None:
        deliveries, self._deliveries = self._deliveries, {}
        for delivery in deliveries.values():
            await delivery.close()

    def _delivery(self, target: Target) -> Delivery:
        found = self._deliveries.get(target.key)
        if found is None:
            found = self._deliveries[target.key] = delivery_for(target.sink, self.source)
        return found

    async def _drain(
        self, target: Target, deadline: float, stop: asyncio.Event | None = None
    ) -> int:
        """Deliver ``target``'s due events until ``deadline``, or until ``stop`` is set (each
        repository's run then ends after the delivery it is in)."""
        dropped = await anyio.to_thread.run_sync(self._trim, target)
        if dropped:
            log_event(
                log,
                logging.WARNING,
                "events backlog full: oldest dropped",
                sink=target.key,
                dropped=dropped,
                maxQueued=target.sink.maxQueued,
            )
        sent = 0
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            runs = await anyio.to_thread.run_sync(
                self.outbox.due, target.key, time.time(), PARALLEL, RUN
            )
            if not runs:
                break
            delivered = await self._deliver(target, runs, stop)
            sent += delivered
            if not delivered:
                break  # all failed: they are due later, after their back-off
        return sent

    def _trim(self, target: Target) -> int:
        """``outbox.trim`` when the backlog may have grown past ``maxQueued`` since it was
        last counted (by at most one row per event made since): a count of a long backlog on
        every poll cost several % of a core while a sink was down. How many were dropped."""
        last = self.outbox.last_seq()
        counted = self._counted.get(target.key)
        if counted is not None and counted[0] + last - counted[1] <= target.sink.maxQueued:
            return 0
        dropped, queued = self.outbox.trim(target.key, target.sink.maxQueued)
        self._counted[target.key] = (queued, last)
        return dropped

    async def _deliver(
        self, target: Target, runs: list[list[Due]], stop: asyncio.Event | None
    ) -> int:
        delivery = self._delivery(target)
        outcomes = await asyncio.gather(*(self._run(delivery, run, stop) for run in runs))
        ok = [seq for sent, _ in outcomes for seq in sent]
        failures = [
            (failed.seq, time.time() + backoff(failed.attempts), error)
            for failed, error in (failure for _, failure in outcomes if failure is not None)
        ]
        await anyio.to_thread.run_sync(self.outbox.delivered, target.key, ok)
        await anyio.to_thread.run_sync(self.outbox.failed, target.key, failures)
        if failures:
            log_event(log, logging.WARNING, "events delivery failed", sink=target.key,
                      failed=len(failures), error=failures[0][2])  # fmt: skip
        return len(ok)

    async def _run(
        self, delivery: Delivery, run: list[Due], stop: asyncio.Event | None
    ) -> tuple[list[int], tuple[Due, str] | None]:
        """Deliver one repository's events in order, until ``stop`` is set: (the seqs sent,
        the first failure). Those left are still due, for the next round."""
        sent: list[int] = []
        for each in run:
            if stop is not None and stop.is_set():
                break
            error = await self._one(delivery, each)
            if error is not None:
                return sent, (each, error)
            sent.append(each.seq)
        return sent, None

    @staticmethod
    async def _one(delivery: Delivery, due: Due) -> str | None:
        try:
            await delivery.send(due.event)
        except DeliveryError as exc:
            return str(exc) or "failed"
        except Exception as exc:  # a fault of ours: retried with back-off like any failure
            log.exception("events: delivering %s failed unexpectedly", due.event.id)
            return f"{type(exc).__name__}: {exc}"
        return None
