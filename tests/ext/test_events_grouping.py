"""Group commit of the intents of concurrent pushes: the writer thread writes what was asked
meanwhile in one go, a wake still gets its call when items came with it, a failed group fails
only its own requests, and the producer's pushes written this way are all confirmed, in fewer
transactions than pushes."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from ocireg.ext.events import grouping
from ocireg.ext.events.grouping import GROUP_BYTES, GROUP_ITEMS, INLINE_BYTES, GroupWriter
from ocireg.ext.events.production import Producer
from ocireg.ext.events.settings import Sink
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


class HeldGroups:
    """The outbox's group write, held until ``gate`` is set: ``writing`` once it is called,
    ``written`` once it has returned or raised."""

    def __init__(self, outbox: Outbox) -> None:
        self.gate, self.writing, self.written = (threading.Event() for _ in range(3))
        self._write = outbox.intend_groups
        outbox.intend_groups = self  # type: ignore[method-assign]
        outbox.try_intend_groups = _never_inline  # type: ignore[method-assign]

    def __call__(self, groups: list[Any], owner: str, confirmed: Any = None) -> list[list[int]]:
        self.writing.set()
        assert self.gate.wait(10)
        try:
            return self._write(groups, owner, confirmed)
        finally:
            self.written.set()


def _never_inline(*_: Any) -> None:
    """An outbox's ``try_intend_groups`` that always finds the lock held: every group goes
    to the writer thread."""
    return None


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


def test_what_a_loop_asks_in_one_iteration_is_written_in_one_group() -> None:
    write = Gated()
    write.gate.set()
    writer = GroupWriter(write, "test-group")

    async def at_once() -> list[int]:
        assert await writer.submit(0) == 0  # the thread is up, waiting for work
        asked = []
        for item in range(1, 6):  # in one iteration of the loop, each a while after the last
            asked.append(writer.submit(item))
            time.sleep(0.01)  # (the GIL is free: a thread woken meanwhile could take it)
        return await asyncio.wait_for(asyncio.gather(*asked), 10)

    assert asyncio.run(at_once()) == [10, 20, 30, 40, 50]
    assert write.groups == [[0], [1, 2, 3, 4, 5]]


class Trying:
    """A ``try_write`` that writes (as ``write`` would) unless told to find the lock held."""

    def __init__(self) -> None:
        self.held = False
        self.groups: list[list[int]] = []
        self.threads: list[str] = []

    def __call__(self, items: list[int]) -> list[int] | None:
        if self.held:
            return None
        self.groups.append(list(items))
        self.threads.append(threading.current_thread().name)
        return [item * 10 for item in items]


def test_a_group_is_written_on_the_loop_when_that_needs_no_wait() -> None:
    write, trying = Gated(), Trying()
    writer = GroupWriter(write, "test-group", try_write=trying)

    async def one_iteration() -> list[int]:
        return await asyncio.gather(*(writer.submit(item) for item in (1, 2, 3)))

    assert asyncio.run(one_iteration()) == [10, 20, 30]
    assert trying.groups == [[1, 2, 3]] and trying.threads == ["MainThread"]
    assert write.groups == [] and writer._thread is None  # no thread was needed


def test_a_group_whose_try_would_wait_goes_to_the_thread() -> None:
    write, trying = Gated(), Trying()
    write.gate.set()
    trying.held = True
    writer = GroupWriter(write, "test-group", try_write=trying)

    async def one() -> int:
        return await asyncio.wait_for(writer.submit(4), 10)

    assert asyncio.run(one()) == 40
    assert write.groups == [[4]] and trying.groups == []
    writer.close()


class Slow(Trying):
    """A ``try_write`` whose first write takes ``seconds`` (the disk's writeback saturated)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def __call__(self, items: list[int]) -> list[int] | None:
        if not self.groups:
            time.sleep(self.seconds)
        return super().__call__(items)


def test_after_an_inline_write_that_stalled_the_loop_groups_go_to_the_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    write, slow = Gated(), Slow(grouping.INLINE_STALL * 2)
    write.gate.set()
    writer = GroupWriter(write, "test-group", try_write=slow)

    async def two() -> list[int]:
        first = await writer.submit(1)
        return [first, await asyncio.wait_for(writer.submit(2), 10)]

    with caplog.at_level("WARNING", logger="ocireg.events"):
        assert asyncio.run(two()) == [10, 20]
    assert slow.groups == [[1]] and write.groups == [[2]]
    assert "a write on the event loop took" in caplog.text and "in a thread" in caplog.text
    writer.close()


def test_inline_writes_resume_once_the_pause_after_a_stall_is_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(grouping, "INLINE_PAUSE", 0.05)
    write, slow = Gated(), Slow(grouping.INLINE_STALL * 2)
    write.gate.set()
    writer = GroupWriter(write, "test-group", try_write=slow)

    async def three() -> list[int]:
        first = await writer.submit(1)
        second = await asyncio.wait_for(writer.submit(2), 10)  # paused: to the thread
        await asyncio.sleep(0.1)
        return [first, second, await writer.submit(3)]

    assert asyncio.run(three()) == [10, 20, 30]
    assert slow.groups == [[1], [3]] and write.groups == [[2]]
    writer.close()


def test_a_quick_inline_write_keeps_the_next_on_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(grouping, "INLINE_STALL", 5.0)  # a loaded host's hiccup is no stall
    write, trying = Gated(), Trying()
    writer = GroupWriter(write, "test-group", try_write=trying)

    async def two() -> list[int]:
        return [await writer.submit(1), await writer.submit(2)]

    assert asyncio.run(two()) == [10, 20]
    assert trying.groups == [[1], [2]] and write.groups == [] and writer._thread is None


def test_a_group_does_not_overtake_one_the_thread_has_not_handed_back() -> None:
    """Pushes commit in the order their intents were written; a group written on the loop
    while an earlier one is still in the thread would overtake it."""
    write, trying = Gated(), Trying()
    trying.held = True
    writer = GroupWriter(write, "test-group", try_write=trying)
    resumed: list[int] = []

    async def push(item: int) -> None:
        await writer.submit(item)
        resumed.append(item)

    async def in_order() -> None:
        first = asyncio.ensure_future(push(1))
        await _until(write.entered)  # in the thread, held there
        trying.held = False  # the lock is free again: but 1 has not come back
        second = asyncio.ensure_future(push(2))
        await asyncio.sleep(0.05)
        write.gate.set()
        await asyncio.wait_for(asyncio.gather(first, second), 10)
        await push(3)  # nothing outstanding any more: on the loop

    asyncio.run(in_order())
    assert resumed == [1, 2, 3]
    assert write.groups == [[1], [2]] and trying.groups == [[3]]
    writer.close()


def test_a_loop_that_closed_with_a_group_in_the_thread_leaves_the_next_loop_inline() -> None:
    """The thread hands its result back to a loop that then closes without running it (a
    server stopping): the count of what that loop waits for is its own, not the next's."""
    write, trying = Gated(), Trying()
    trying.held = True
    writer = GroupWriter(write, "test-group", try_write=trying)
    first = asyncio.new_event_loop()

    async def leave_one_in_the_thread() -> None:
        writer.submit(1)
        await _until(write.entered)  # held in the thread

    first.run_until_complete(leave_one_in_the_thread())  # the loop stops, still open
    write.gate.set()  # the result is handed back to it...
    for _ in range(500):
        if write.groups:
            break
        time.sleep(0.01)
    time.sleep(0.05)
    first.close()  # ...and never taken
    trying.held = False

    async def one() -> int:
        return await writer.submit(2)

    assert asyncio.run(one()) == 20
    assert trying.groups == [[2]]  # on the loop
    writer.close()


def test_a_group_of_many_bytes_goes_to_the_thread() -> None:
    write, trying = Gated(), Trying()
    write.gate.set()
    writer = GroupWriter(write, "test-group", size=lambda item: item, try_write=trying)

    async def small_then_large() -> list[int]:
        return [await writer.submit(10), await writer.submit(INLINE_BYTES + 1)]

    assert asyncio.run(small_then_large()) == [100, (INLINE_BYTES + 1) * 10]
    assert trying.groups == [[10]] and write.groups == [[INLINE_BYTES + 1]]
    writer.close()


def test_a_try_that_raises_leaves_the_group_to_the_thread() -> None:
    write = Gated()
    write.gate.set()

    def raising(items: list[int]) -> list[int] | None:
        raise RuntimeError("disk I/O error")

    writer = GroupWriter(write, "test-group", try_write=raising)

    async def one() -> int:
        return await asyncio.wait_for(writer.submit(5), 10)

    assert asyncio.run(one()) == 50
    assert write.groups == [[5]]
    writer.close()


def test_a_wake_after_items_of_the_same_iteration_comes_after_them() -> None:
    write = Gated()
    write.gate.set()
    writer = GroupWriter(write, "test-group")

    async def items_then_wake() -> None:
        asked = [writer.submit(item) for item in (1, 2)]
        writer.wake()
        await asyncio.wait_for(asyncio.gather(*asked), 10)
        for _ in range(500):
            if len(write.groups) == 2:
                return
            await asyncio.sleep(0.01)

    asyncio.run(items_then_wake())
    assert write.groups == [[1, 2], []]


def test_a_wake_queued_with_items_gets_a_call_of_its_own_after_them() -> None:
    write = Gated()
    writer = GroupWriter(write, "test-group")

    async def wake_among_items() -> None:
        first = writer.submit(1)
        await _until(write.entered)
        second = writer.submit(2)
        writer.wake()
        third = writer.submit(3)
        # this iteration's hand-over (of 3) runs before the writer goes on: otherwise the
        # thread may take 2 and the wake first, and 3 makes a group of its own after them
        await asyncio.sleep(0)
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
    try_intend_groups = outbox.try_intend_groups

    def counting_inline(groups: list[Any], owner: str, confirmed: Any = None) -> Any:
        written = try_intend_groups(groups, owner, confirmed)
        if written is not None:
            transactions.append(len(groups))
        return written

    outbox.try_intend_groups = counting_inline  # type: ignore[method-assign]

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
    held = HeldGroups(outbox)
    gate, writing, written = held.gate, held.writing, held.written
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


@pytest.mark.parametrize("executor", ["running", "shut"])
def test_a_push_cancelled_once_its_group_is_written_has_its_event_dropped(
    tmp_path: Path, executor: str
) -> None:
    """Written, its future resolved, and cancelled before it resumed: the settle it was
    given comes too late for the push, which settles it as not made (in a thread, or, the
    loop's executor being shut as the server stops, at once)."""
    from tests.ext.test_events_settling import Storage

    outbox = Outbox(tmp_path / "meta.db")
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    producer = Producer(outbox, sinks, "zotregistry", Storage())  # type: ignore[arg-type]
    held = HeldGroups(outbox)
    change = Change("pushed", "a/b", "sha256:" + "a" * 64, "m", ("t0",))
    handed_back = threading.Event()
    hand_back = producer._writer._hand_back

    def hand_back_then_tell(outcomes: Any) -> None:
        hand_back(outcomes)
        handed_back.set()

    producer._writer._hand_back = hand_back_then_tell  # type: ignore[method-assign]

    async def cancel_once_written() -> None:
        push = asyncio.ensure_future(intend_off_loop([producer], change))
        await _until(held.writing)
        held.gate.set()
        # the loop held: the writer's hand-back is queued on it meanwhile
        assert handed_back.wait(10)
        await asyncio.sleep(0)  # the hand-back resolves the push's future, then this resumes
        assert not push.done()
        if executor == "shut":
            await asyncio.get_running_loop().shutdown_default_executor()
        push.cancel()
        with pytest.raises(asyncio.CancelledError):
            await push
        for _ in range(500):  # settled in a thread
            if outbox.figures() == {} and not outbox.intents():
                return
            await asyncio.sleep(0.01)

    try:
        asyncio.run(cancel_once_written())
        assert outbox.intents() == []
        assert outbox.figures() == {}  # its change never happened: no event queued
        assert producer._in_flight == set()
    finally:
        producer.close()
        outbox.close()


def test_a_failed_group_is_written_change_by_change_with_its_confirmations(
    tmp_path: Path,
) -> None:
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
    outbox.try_intend_groups = _never_inline  # type: ignore[method-assign]

    def pushed(tag: str) -> Change:
        return Change("pushed", "a/b", "sha256:" + "a" * 64, "m", (tag,))

    async def two_pushes() -> Any:
        first = await intend_off_loop([producer], pushed("t0"))
        assert first is not None
        first(True)  # its confirmation waits for the next intent
        second = await intend_off_loop([producer], pushed("t1"))  # its group's write fails
        assert second is not None  # written again on its own
        second(True)
        for _ in range(500):
            if not outbox.intents():
                break
            await asyncio.sleep(0.01)

    try:
        asyncio.run(two_pushes())
        assert failures == [] and outbox.intents() == []
        assert outbox.figures()["http:http://127.0.0.1:9/events"].queued == 2
    finally:
        producer.close()
        outbox.close()


def test_one_bad_change_of_a_group_loses_only_its_own_event(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "meta.db")
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    producer = Producer(outbox, sinks, "zotregistry", None)  # type: ignore[arg-type]
    intend_groups = outbox.intend_groups
    sizes: list[int] = []

    def refusing_bad(groups: list[Any], owner: str, confirmed: Any = None) -> list[list[int]]:
        sizes.append(len(groups))
        if any(event.repo == "bad" for events in groups for event, _, _ in events):
            raise ValueError("a bad change")
        return intend_groups(groups, owner, confirmed)

    outbox.intend_groups = refusing_bad  # type: ignore[method-assign]
    outbox.try_intend_groups = _never_inline  # type: ignore[method-assign]

    async def burst() -> list[Any]:
        names = ["a/b", "bad", "c/d", "e/f"]
        changes = [Change("pushed", name, "sha256:" + "a" * 64, "m", ("t",)) for name in names]
        return await asyncio.gather(*(intend_off_loop([producer], each) for each in changes))

    try:
        settles = asyncio.run(burst())
        assert [settle is None for settle in settles] == [False, True, False, False]
        assert max(sizes) > 1  # they were grouped, then written one by one
        assert {intent.repo for intent in outbox.intents()} == {"a/b", "c/d", "e/f"}
    finally:
        producer.close()
        outbox.close()


def test_a_change_whose_events_cannot_be_made_loses_only_its_own(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "meta.db")
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    producer = Producer(outbox, sinks, "zotregistry", None)  # type: ignore[arg-type]
    groups: list[int] = []
    intend_groups = outbox.intend_groups

    def counting(written: list[Any], owner: str, confirmed: Any = None) -> list[list[int]]:
        groups.append(len(written))
        return intend_groups(written, owner, confirmed)

    outbox.intend_groups = counting  # type: ignore[method-assign]
    good = Change("pushed", "a/good", "sha256:" + "a" * 64, "m", ("t0",))
    bad = Change("removed", "a/bad", "sha256:" + "b" * 64, "m", ())  # a removal of no tag

    async def in_one_group() -> list[Any]:
        asked = [intend_off_loop([producer], good), intend_off_loop([producer], bad)]
        return await asyncio.wait_for(asyncio.gather(*asked, return_exceptions=True), 10)

    try:
        made, lost = asyncio.run(in_one_group())
        assert callable(made) and lost is None  # the bad one goes on, without its event
        assert groups == [2]
        assert [intent.repo for intent in outbox.intents()] == ["a/good"]
        assert producer.journal(bad) is None  # written on the caller's thread: the same
    finally:
        producer.close()
        outbox.close()


def test_a_group_stays_within_its_bounds_of_items_and_bytes() -> None:
    write = Gated()
    writer: GroupWriter[int, int] = GroupWriter(write, "test-group", size=lambda item: 100_000)

    async def burst() -> list[int]:
        first = writer.submit(1)
        await _until(write.entered)
        rest = [writer.submit(item) for item in range(2, 302)]
        write.gate.set()
        return await asyncio.wait_for(asyncio.gather(first, *rest), 10)

    try:
        assert asyncio.run(burst()) == [item * 10 for item in range(1, 302)]
    finally:
        writer.close()
    bound = -(-GROUP_BYTES // 100_000)  # the item that crosses the bound goes in its group
    assert [item for group in write.groups for item in group] == list(range(1, 302))
    assert max(len(group) for group in write.groups) == bound


def test_a_group_writes_at_most_its_number_of_items() -> None:
    write = Gated()
    writer: GroupWriter[int, int] = GroupWriter(write, "test-group")

    async def burst() -> None:
        first = writer.submit(1)
        await _until(write.entered)
        rest = [writer.submit(item) for item in range(2, 202)]
        write.gate.set()
        await asyncio.wait_for(asyncio.gather(first, *rest), 10)

    try:
        asyncio.run(burst())
    finally:
        writer.close()
    assert max(len(group) for group in write.groups) == GROUP_ITEMS


def test_a_writer_thread_that_dies_fails_its_requests_and_the_next_starts_another() -> None:
    deaths = [RuntimeError("the thread's loop failed")]

    def size(item: int) -> int:
        if item < 0 and deaths:
            raise deaths.pop()
        return 1

    writer: GroupWriter[int, int] = GroupWriter(
        lambda items: [i * 10 for i in items], "t", size=size
    )

    async def die_then_write() -> list[Any]:
        failed = await asyncio.gather(writer.submit(-1), return_exceptions=True)
        return [*failed, await asyncio.wait_for(writer.submit(2), 10)]

    try:
        (failed, later) = asyncio.run(asyncio.wait_for(die_then_write(), 10))
    finally:
        writer.close()
    assert isinstance(failed, RuntimeError) and later == 20


def test_a_wake_taken_by_a_writer_thread_that_dies_still_gets_its_call() -> None:
    calls: list[list[int]] = []

    def size(item: int) -> int:
        if item < 0:
            raise RuntimeError("the thread's loop failed")
        return 1

    def write(items: list[int]) -> list[int]:
        calls.append(list(items))
        return items

    writer: GroupWriter[int, int] = GroupWriter(write, "t", size=size)

    async def die_with_a_wake() -> list[Any]:
        failing = writer.submit(-1)
        writer.wake()  # handed over with the item, taken with it by the thread that dies
        return await asyncio.wait_for(asyncio.gather(failing, return_exceptions=True), 10)

    try:
        (failed,) = asyncio.run(die_with_a_wake())
    finally:
        writer.close()
    assert isinstance(failed, RuntimeError)
    assert calls == [[]]  # the wake's call (confirmations wait for it)


def _threads_cannot_start(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Starting a thread called ``name`` fails, as it does when the process has too many."""
    start = threading.Thread.start

    def failing(thread: threading.Thread) -> None:
        if thread.name == name:
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", failing)


def test_a_hand_over_whose_thread_cannot_start_fails_its_requests_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer: GroupWriter[int, int] = GroupWriter(lambda items: [i * 10 for i in items], "t-none")
    _threads_cannot_start(monkeypatch, "t-none")

    async def submit_both() -> list[Any]:
        asked = [writer.submit(1), writer.submit(2)]  # one hand-over for both
        return await asyncio.wait_for(asyncio.gather(*asked, return_exceptions=True), 5)

    async def submit_again() -> int:
        return await asyncio.wait_for(writer.submit(3), 5)

    try:
        failed = asyncio.run(submit_both())
        assert [str(each) for each in failed] == ["can't start new thread"] * 2
        monkeypatch.undo()  # threads start again: so does the writer's
        assert asyncio.run(submit_again()) == 30
    finally:
        writer.close()


def test_a_wake_whose_thread_cannot_start_leaves_the_confirmations_to_settle_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = Outbox(tmp_path / "meta.db")
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    producer = Producer(outbox, sinks, "zotregistry", None)  # type: ignore[arg-type]
    change = Change("pushed", "a/b", "sha256:" + "a" * 64, "m", ("t0",))

    async def push_then_commit() -> None:
        settle = await intend_off_loop([producer], change)
        assert settle is not None
        producer.close()  # the writer's thread ends; the wake must start another, and can't
        _threads_cannot_start(monkeypatch, "events-intents")
        settle(True)  # its confirmation: a wake of the writer after CONFIRM_DELAY
        await asyncio.sleep(0.3)

    try:
        asyncio.run(push_then_commit())
        assert [intent.repo for intent in outbox.intents()] == ["a/b"]  # not confirmed yet
        monkeypatch.undo()
        producer.settle_stale()  # tries the confirmation again, here
        assert outbox.intents() == []
        assert outbox.figures()["http:http://127.0.0.1:9/events"].queued == 1
    finally:
        producer.close()
        outbox.close()


def test_a_loop_closed_before_its_hand_over_is_not_kept_alive() -> None:
    writer: GroupWriter[int, int] = GroupWriter(lambda items: items, "t-closed")
    loop = asyncio.new_event_loop()

    def submit_then_stop() -> None:
        writer.submit(1)  # its hand-over is the loop's next iteration, which never comes
        asyncio.get_running_loop().stop()

    async def submit_elsewhere() -> int:
        return await asyncio.wait_for(writer.submit(2), 10)

    try:
        loop.call_soon(submit_then_stop)
        loop.run_forever()
        loop.close()
        closed = weakref.ref(loop)
        del loop
        assert asyncio.run(submit_elsewhere()) == 2
        gc.collect()
        assert closed() is None
    finally:
        writer.close()


def test_close_ends_the_writer_thread_after_what_is_queued() -> None:
    writer: GroupWriter[int, int] = GroupWriter(lambda items: items, "test-closing")

    async def write() -> int:
        return await writer.submit(7)

    assert asyncio.run(write()) == 7
    writer.close()
    assert not any(thread.name == "test-closing" for thread in threading.enumerate())


def test_a_push_whose_loop_closed_while_its_group_was_written_is_settled(
    tmp_path: Path,
) -> None:
    from tests.ext.test_events_settling import Storage

    outbox = Outbox(tmp_path / "meta.db")
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    producer = Producer(outbox, sinks, "zotregistry", Storage())  # type: ignore[arg-type]
    held = HeldGroups(outbox)
    gate, written = held.gate, held.written
    change = Change("pushed", "a/b", "sha256:" + "a" * 64, "m", ("t0",))

    async def leave_while_written() -> None:
        push = asyncio.ensure_future(intend_off_loop([producer], change))
        await asyncio.sleep(0.05)
        assert not push.done()

    try:
        asyncio.run(leave_while_written())  # the loop ends while the group is written
        gate.set()
        assert written.wait(10)
        producer.close()  # after the writer let go of what it wrote
        assert producer._in_flight == set()
        assert outbox.intents() == [] and outbox.figures() == {}  # dropped: never committed
    finally:
        producer.close()
        outbox.close()


def test_a_plain_journal_that_raises_settles_the_grouped_write(tmp_path: Path) -> None:
    from tests.ext.test_events_settling import Storage

    outbox = Outbox(tmp_path / "meta.db")
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    producer = Producer(outbox, sinks, "zotregistry", Storage())  # type: ignore[arg-type]
    plain_calls: list[Change] = []
    written = threading.Event()
    intend_groups = outbox.intend_groups

    def noted(groups: list[Any], owner: str, confirmed: Any = None) -> list[list[int]]:
        try:
            return intend_groups(groups, owner, confirmed)
        finally:
            written.set()

    outbox.intend_groups = noted  # type: ignore[method-assign]
    outbox.try_intend_groups = _never_inline  # type: ignore[method-assign]

    def plain(change: Change) -> None:
        plain_calls.append(change)

    class Raising:
        def write_soon(self, change: Change) -> Any:
            raise RuntimeError("cannot start")

    change = Change("pushed", "a/b", "sha256:" + "a" * 64, "m", ("t0",))

    async def push() -> None:
        with pytest.raises(RuntimeError):
            await intend_off_loop([producer, plain, Raising()], change)  # type: ignore[list-item]
        await _until(written)
        for _ in range(500):
            if not producer._in_flight and outbox.intents() == []:
                return
            await asyncio.sleep(0.01)

    try:
        asyncio.run(push())
        assert producer._in_flight == set() and outbox.intents() == []
        assert outbox.figures() == {}
    finally:
        producer.close()
        outbox.close()


@pytest.mark.parametrize(
    ("manifest_bytes", "durable", "thread"),
    [
        (100, False, "MainThread"),
        (INLINE_BYTES, False, "events-intents"),
        (100, True, "events-intents"),
    ],
)
def test_a_grouped_push_has_its_event_json_made_off_the_event_loop_unless_small(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    manifest_bytes: int,
    durable: bool,
    thread: str,
) -> None:
    """A small group's events are made and written on the loop (see ``GroupWriter._inline``);
    one embedding a large manifest, or for a durable outbox (whose commit waits for the
    disk), has its JSON made in the writer thread, once."""
    import json

    from ocireg.ext.events import production

    outbox = Outbox(tmp_path / "meta.db", durable=durable)
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    producer = Producer(outbox, sinks, "zotregistry", None)  # type: ignore[arg-type]
    threads: list[str] = []

    class Recording:
        @staticmethod
        def dumps(document: Any) -> str:
            threads.append(threading.current_thread().name)
            return json.dumps(document)

    monkeypatch.setattr(production, "json", Recording)
    manifest = b'{"schemaVersion": 2, "annotations": {"a": "%s"}}' % (b"x" * manifest_bytes)
    change = Change("pushed", "a/b", "sha256:" + "a" * 64, "m", ("t0", "t1"), manifest)

    async def push() -> Any:
        return await intend_off_loop([producer], change)

    try:
        assert asyncio.run(push()) is not None
        assert threads == [thread, thread]  # one event per tag
        assert outbox.figures()["http:http://127.0.0.1:9/events"].queued == 2
    finally:
        producer.close()
        outbox.close()
