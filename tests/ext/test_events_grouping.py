"""Group commit of the intents of concurrent pushes: the writer thread writes what was asked
meanwhile in one go, a wake still gets its call when items came with it, a failed group fails
only its own requests, and the producer's pushes written this way are all confirmed, in fewer
transactions than pushes."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from ocireg.ext.events import Sink
from ocireg.ext.events.grouping import GroupWriter
from ocireg.ext.events.production import Producer
from ocireg.ext.events.sinkset import targets
from ocireg.ext.events.store import Outbox
from ocireg.registry.journal import Change, intend_off_loop

# The producer looks for the request it serves (none here) through the server stack, whose
# imports warn on this Starlette and jsonschema.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient."),
]


class Gated:
    """A group write that waits for ``gate`` on its first call, so that items queue up."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.entered.set()
        assert self.gate.wait(10)
        self.groups.append(list(items))
        if any(item < 0 for item in items):
            raise RuntimeError("disk I/O error")
        return [item * 10 for item in items]


async def _until(event: threading.Event) -> None:
    for _ in range(1000):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never set")


def test_what_is_asked_while_the_writer_is_busy_is_written_in_one_group() -> None:
    write = Gated()
    writer = GroupWriter(write, "test-group")

    async def burst() -> list[int]:
        first = writer.submit(1)
        await _until(write.entered)  # busy with the first: the rest queue
        rest = [writer.submit(item) for item in range(2, 9)]
        write.gate.set()
        return await asyncio.wait_for(asyncio.gather(first, *rest), 10)

    assert asyncio.run(burst()) == [10, 20, 30, 40, 50, 60, 70, 80]
    assert write.groups == [[1], [2, 3, 4, 5, 6, 7, 8]]


def test_a_wake_queued_with_items_gets_a_call_of_its_own_after_them() -> None:
    write = Gated()
    writer = GroupWriter(write, "test-group")

    async def wake_among_items() -> None:
        first = writer.submit(1)
        await _until(write.entered)
        second = writer.submit(2)
        writer.wake()
        third = writer.submit(3)
        write.gate.set()
        await asyncio.wait_for(asyncio.gather(first, second, third), 10)
        for _ in range(500):
            if len(write.groups) == 3:
                return
            await asyncio.sleep(0.01)

    asyncio.run(wake_among_items())
    assert write.groups == [[1], [2, 3], []]


def test_a_failed_group_fails_its_own_requests_only() -> None:
    write = Gated()
    writer = GroupWriter(write, "test-group")

    async def failing_group() -> list[Any]:
        first = writer.submit(1)
        await _until(write.entered)
        failing = [writer.submit(2), writer.submit(-3)]
        write.gate.set()
        results = await asyncio.gather(first, *failing, return_exceptions=True)
        return [*results, await asyncio.wait_for(writer.submit(4), 10)]

    first, second, third, later = asyncio.run(failing_group())
    assert (first, later) == (10, 40)
    assert isinstance(second, RuntimeError) and isinstance(third, RuntimeError)


def test_pushes_written_by_the_group_writer_are_all_confirmed(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "meta.db")
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    producer = Producer(outbox, sinks, "zotregistry", None)  # type: ignore[arg-type]
    transactions: list[int] = []
    intend_groups = outbox.intend_groups

    def counting(groups: list[Any], owner: str, confirmed: Any = None) -> list[list[int]]:
        transactions.append(len(groups))
        return intend_groups(groups, owner, confirmed)

    outbox.intend_groups = counting  # type: ignore[method-assign]

    async def push(number: int) -> None:
        change = Change("pushed", f"r{number % 4}", "sha256:" + "a" * 64, "m", (f"t{number}",))
        settle = await intend_off_loop([producer], change)
        assert settle is not None
        await asyncio.sleep(0.001)  # the commit
        settle(True)

    async def pushes() -> None:
        await asyncio.gather(*(push(number) for number in range(200)))
        for _ in range(500):  # the last confirmations go after CONFIRM_DELAY
            if not outbox.intents():
                return
            await asyncio.sleep(0.01)

    try:
        asyncio.run(pushes())
        assert outbox.intents() == []
        assert outbox.figures()["http:http://127.0.0.1:9/events"].queued == 200
        assert sum(transactions) == 200 and len(transactions) < 200  # grouped
    finally:
        outbox.close()


def test_a_push_cancelled_while_its_group_is_written_has_its_event_dropped(
    tmp_path: Path,
) -> None:
    from tests.ext.test_events_settling import Storage

    outbox = Outbox(tmp_path / "meta.db")
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    producer = Producer(outbox, sinks, "zotregistry", Storage())  # type: ignore[arg-type]
    gate, writing, written = threading.Event(), threading.Event(), threading.Event()
    intend_groups = outbox.intend_groups

    def held(groups: list[Any], owner: str, confirmed: Any = None) -> list[list[int]]:
        writing.set()
        assert gate.wait(10)
        try:
            return intend_groups(groups, owner, confirmed)
        finally:
            written.set()

    outbox.intend_groups = held  # type: ignore[method-assign]
    change = Change("pushed", "a/b", "sha256:" + "a" * 64, "m", ("t0",))

    async def cancel_while_written() -> None:
        push = asyncio.ensure_future(intend_off_loop([producer], change))
        await _until(writing)
        push.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await push
        await _until(written)
        for _ in range(500):  # settled in a thread once written
            if outbox.figures() == {} and not outbox.intents():
                return
            await asyncio.sleep(0.01)

    try:
        asyncio.run(cancel_while_written())
        assert outbox.intents() == []
        assert outbox.figures() == {}  # its change never happened: no event queued
    finally:
        outbox.close()


def test_a_failed_group_loses_its_events_not_the_confirmations_it_took(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "meta.db")
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    producer = Producer(outbox, sinks, "zotregistry", None)  # type: ignore[arg-type]
    intend_groups = outbox.intend_groups
    failures = [RuntimeError("database is locked")]

    def failing_once(groups: list[Any], owner: str, confirmed: Any = None) -> list[list[int]]:
        if failures and confirmed:  # the second push's group, with the first's confirmation
            raise failures.pop()
        return intend_groups(groups, owner, confirmed)

    outbox.intend_groups = failing_once  # type: ignore[method-assign]

    def pushed(tag: str) -> Change:
        return Change("pushed", "a/b", "sha256:" + "a" * 64, "m", (tag,))

    async def two_pushes() -> Any:
        first = await intend_off_loop([producer], pushed("t0"))
        assert first is not None
        first(True)  # its confirmation waits for the next intent
        second = await intend_off_loop([producer], pushed("t1"))  # that write fails
        for _ in range(500):  # the first is confirmed by the confirmer after all
            if not outbox.intents():
                break
            await asyncio.sleep(0.01)
        return second

    try:
        assert asyncio.run(two_pushes()) is None  # the push goes on without its event
        assert failures == [] and outbox.intents() == []
        assert outbox.figures()["http:http://127.0.0.1:9/events"].queued == 1  # t0's
    finally:
        outbox.close()
