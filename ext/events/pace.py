"""How hard the sender process competes for the CPU: not at all while its backlog is young,
as a niced process once deliveries fall behind.

On a busy registry every CPU-millisecond a delivery takes is taken from the pushes (the
registry and its clients fill the cores). So the sender delivers under ``SCHED_IDLE`` (Linux):
it runs when a core would otherwise idle, and its events wait out a burst of pushes. A
registry that stays saturated would then starve delivery (a ``SCHED_IDLE`` thread gets a
weight of 3 against 1024 at nice 0), so once deliveries fall behind the sender goes back to
the normal policy at its nice value (``process.NICENESS``), and to ``SCHED_IDLE`` again once
it has caught up. Behind means:

- an event has waited ``LAG_SECONDS`` for its first try at the head of its repository's queue
  (events behind a failed delivery wait for their back-off, not for the CPU: a sink that is
  down does not count), or
- a sink's backlog has reached ``BACKLOG_SHARE`` of its ``maxQueued`` (beyond it the oldest
  would be dropped).

Caught up: no event has waited ``CAUGHT_UP_SECONDS`` and every backlog is below half of that
share. The gap between the two keeps the sender from switching back and forth.

An unprivileged thread may enter ``SCHED_IDLE`` but not leave it (``RLIMIT_NICE``), so the
sender never changes a running thread's policy back: each pace runs the deliveries in a thread
of its own, started by the main thread (whose normal policy new threads inherit), which enters
``SCHED_IDLE`` itself when that is the pace (see :mod:`.process`).
"""

from __future__ import annotations

import enum
import os
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the sender process imports this module before its heavier ones
    from .sinkset import Target
    from .store import Outbox

LAG_SECONDS = 5.0
CAUGHT_UP_SECONDS = 1.0
BACKLOG_SHARE = 0.5
CHECK_SECONDS = 1.0  # how often the sender looks whether it should change its pace


class Pace(enum.Enum):
    IDLE = "idle"  # SCHED_IDLE: only CPU no one else wants
    NORMAL = "normal"  # the normal policy, at the process's nice value


def enter(pace: Pace) -> None:
    """Put the calling thread (and the threads it starts) at ``pace``: SCHED_IDLE where the
    platform has it; the normal policy is what a thread inherits from the main thread."""
    if pace is Pace.IDLE and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


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
