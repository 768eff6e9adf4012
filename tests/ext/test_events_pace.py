"""The events sender process's pace (ext/events/pace.py): it delivers at nice 19 while its
backlog is young, at the process's nice value when deliveries fall behind, and at nice 19 again
once it has caught up. Driven through a real sender process over an outbox file, its threads'
nice values and policies read from the kernel."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ocireg.ext.events.pace import IDLE_NICE, LAG_SECONDS, Pace, wanted
from ocireg.ext.events.process import NICENESS, start_line
from ocireg.ext.events.settings import EventsSettings
from ocireg.ext.events.sinkset import targets
from ocireg.ext.events.store import Outbox, Stored
from tests.eventsink import Receiver

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="a nice value per thread is Linux's"
)

# the sender's nice value: NICENESS above this test's own, which it inherits
SENDER_NICE = min(os.getpriority(os.PRIO_PROCESS, 0) + NICENESS, IDLE_NICE)
needs_room = pytest.mark.skipif(
    SENDER_NICE >= IDLE_NICE, reason=f"run at nice {SENDER_NICE - NICENESS}: no room below 19"
)


def queue(outbox: Outbox, receiver: Receiver, count: int, age: float) -> None:
    """``count`` events of one repository, made ``age`` seconds ago, for the receiver's sink."""
    (target,) = targets(settings(receiver).sinks)
    made = (datetime.now(UTC) - timedelta(seconds=age)).isoformat().replace("+00:00", "Z")
    for number in range(count):
        event = Stored(str(uuid.uuid4()), "pace/a", "zotregistry.image.updated", made,
                       f'{{"name": "pace/a", "reference": "t{number}"}}')  # fmt: skip
        outbox.record(event, [target.key])


def settings(receiver: Receiver) -> EventsSettings:
    sink = {"type": "http", "address": receiver.url, "timeout": "10s"}
    return EventsSettings.model_validate({"enable": True, "sinks": [sink]})


def threads(pid: int) -> dict[int, tuple[int, int]]:
    """(nice value, scheduling policy) of each of the process's threads, by thread id."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        tid = int(task.name)
        try:
            found[tid] = (os.getpriority(os.PRIO_PROCESS, tid), os.sched_getscheduler(tid))
        except (ProcessLookupError, FileNotFoundError):
            continue  # a thread that has just ended
    return found


def nices(pid: int) -> set[int]:
    return {nice for nice, _ in threads(pid).values()}


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def sender(tmp_path: Path) -> Iterator[Callable[[Receiver], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(receiver: Receiver) -> subprocess.Popen[bytes]:
        line = start_line(settings(receiver), tmp_path / "meta.db", tmp_path / "sender.lock",
                          "info", None)  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "-m", "ocireg.ext.events.process"], stdin=subprocess.PIPE
        )
        assert process.stdin is not None
        process.stdin.write(line)
        process.stdin.flush()
        started.append(process)
        return process

    yield start
    for process in started:
        assert process.stdin is not None
        process.stdin.close()  # the sender ends with its stdin
        assert process.wait(timeout=30) == 0


@needs_room
def test_a_young_backlog_is_delivered_at_nice_19(tmp_path: Path, sender: Callable) -> None:
    receiver = Receiver().start()
    try:
        outbox = Outbox(tmp_path / "meta.db")
        queue(outbox, receiver, 5, age=0)
        process = sender(receiver)
        receiver.wait_for(lambda got: len(got) == 5)
        wait_until(lambda: IDLE_NICE in nices(process.pid))
        seen = threads(process.pid)
        # the main thread keeps the process's nice value, so that it can start a normal pace
        assert seen[process.pid][0] == SENDER_NICE
        # no thread under SCHED_IDLE: one preempted holding SQLite's write lock would stall
        # the registry's writes for long (the delivery thread's and its workers' policy)
        assert {policy for _, policy in seen.values()} == {os.SCHED_OTHER}
        # the last delivery is recorded as sent just after the receiver answered it
        key = targets(settings(receiver).sinks)[0].key
        wait_until(lambda: outbox.figures()[key].queued == 0)
    finally:
        receiver.stop()


@needs_room
def test_a_sender_behind_goes_normal_then_idle_again_once_caught_up(
    tmp_path: Path, sender: Callable
) -> None:
    receiver = Receiver(delay=0.2).start()  # 30 events of one repository: about 6 s
    try:
        outbox = Outbox(tmp_path / "meta.db")
        queue(outbox, receiver, 30, age=LAG_SECONDS * 4)  # waited long already: behind
        process = sender(receiver)
        wait_until(lambda: len(receiver.events()) > 0)
        # behind: the deliveries go on at the process's nice value (no thread at nice 19)
        wait_until(lambda: nices(process.pid) == {SENDER_NICE})
        assert len(receiver.events()) < 30
        got = receiver.wait_for(lambda got: len(got) == 30)
        assert [event.data["reference"] for event in got] == [f"t{n}" for n in range(30)]
        wait_until(lambda: IDLE_NICE in nices(process.pid))  # caught up
    finally:
        receiver.stop()


@pytest.mark.parametrize(
    ("current", "lag", "share", "expected"),
    [
        (Pace.IDLE, None, 0.0, Pace.IDLE),
        (Pace.IDLE, LAG_SECONDS - 0.1, 0.4, Pace.IDLE),
        (Pace.IDLE, LAG_SECONDS, 0.0, Pace.NORMAL),
        (Pace.IDLE, None, 0.5, Pace.NORMAL),
        (Pace.NORMAL, 2.0, 0.0, Pace.NORMAL),  # between the two thresholds: no switch back
        (Pace.NORMAL, None, 0.3, Pace.NORMAL),
        (Pace.NORMAL, 0.5, 0.2, Pace.IDLE),
        (Pace.NORMAL, None, 0.0, Pace.IDLE),
    ],
)
def test_the_pace_wanted_has_a_gap_between_falling_behind_and_catching_up(
    current: Pace, lag: float | None, share: float, expected: Pace
) -> None:
    assert wanted(current, lag, share) is expected
