"""How hard the sender process competes for the CPU: hardly at all while its backlog is young,
as the niced process it is once deliveries fall behind.

On a busy registry every CPU-millisecond a delivery takes is taken from the pushes (the
registry and its clients fill the cores). So while its backlog is young the sender delivers
at the lowest priority of the normal policy, nice ``IDLE_NICE`` (Linux: CFS weight 15
against 1024 at nice 0), and its events wait out a burst of pushes. Not ``SCHED_IDLE``
(weight 3): the delivery thread and the threads it starts run the outbox's SQLite write
transactions (trim, record sent or failed), and a thread preempted while it holds SQLite's
write lock stalls the registry processes' intent writes and the main thread's ``measure``
until it runs again; at weight 15 that is within tens of milliseconds on a saturated CPU,
under ``SCHED_IDLE`` it could be hundreds or more. A registry that stays saturated would
still slow delivery a great deal, so once deliveries fall behind the sender delivers at the
process's nice value (``process.NICENESS``), and at ``IDLE_NICE`` again once it has caught
up. Behind means:

- an event has waited ``LAG_SECONDS`` for its first try at the head of its repository's queue
  (events behind a failed delivery wait for their back-off, not for the CPU: a sink that is
  down does not count), or
- a sink's backlog has reached ``BACKLOG_SHARE`` of its ``maxQueued`` (beyond it the oldest
  would be dropped).

Caught up: no event has waited ``CAUGHT_UP_SECONDS`` and every backlog is below half of that
share. The gap between the two keeps the sender from switching back and forth.

An unprivileged thread may raise its nice value but not lower it again (``RLIMIT_NICE``), so
the sender never changes a running thread's priority back: each pace runs the deliveries in a
thread of its own, started by the main thread (whose nice value new threads inherit), which
raises its own nice value when that is the pace (see :mod:`.process`). On Linux a nice value
set for a thread id is that thread's alone, and the threads it starts inherit it.
"""

from __future__ import annotations

import enum
import os
import sys
import threading
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the sender process imports this module before its heavier ones
    from .sinkset import Target
    from .store import Outbox

LAG_SECONDS = 5.0
CAUGHT_UP_SECONDS = 1.0
BACKLOG_SHARE = 0.5
CHECK_SECONDS = 1.0  # how often the sender looks whether it should change its pace
IDLE_NICE = 19  # the highest nice value: the lowest priority of the normal policy


class Pace(enum.Enum):
    IDLE = "idle"  # nice IDLE_NICE: little CPU while others want it
    NORMAL = "normal"  # the process's nice value


def enter(pace: Pace) -> None:
    """Put the calling thread (and the threads it starts) at ``pace``: nice ``IDLE_NICE`` on
    Linux, where a thread's nice value is its own (elsewhere it would be the whole process's,
    the main thread's too); the process's nice value is what a thread inherits from the main
    thread."""
    if pace is Pace.IDLE and sys.platform == "linux":
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IDLE_NICE)


def wanted(current: Pace, lag: float | None, share: float) -> Pace:
    """The pace for a sender at ``current`` whose oldest untried event has waited ``lag``
    seconds (None: none waits) and whose fullest backlog is ``share`` of its maxQueued."""
    if current is Pace.IDLE:
        behind = (lag is not None and lag >= LAG_SECONDS) or share >= BACKLOG_SHARE
        return Pace.NORMAL if behind else Pace.IDLE
    caught_up = (lag is None or lag < CAUGHT_UP_SECONDS) and share < BACKLOG_SHARE / 2
    return Pace.IDLE if caught_up else Pace.NORMAL


def measure(outbox: Outbox, targets: list[Target], now: float) -> tuple[float | None, float]:
    """(lag, share) of the outbox now (see ``wanted``); blocking."""
    oldest, queued = outbox.backlog()
    lag = None if oldest is None else now - datetime.fromisoformat(oldest).timestamp()
    share = max(
        (queued.get(target.key, 0) / target.sink.maxQueued for target in targets), default=0.0
    )
    return lag, share
