"""``python -m tests.eventcrash serve CONFIG``, with ``CRASH_AT`` (below) set to a point in the
environment: ``ocireg serve`` that SIGKILLs itself at that point of a change's events, so the
crash tests stop it exactly between an event's intent and its settling. Kept out of the
registry's code: it wraps the producer from outside.

- ``intended``: the change's events and intents are written, its commit not yet made;
- ``committed``: the commit is made, its events not yet confirmed.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from ocireg.cli import main
from ocireg.ext.events.production import Producer
from ocireg.registry.journal import Change, Settle

CRASH_AT = "OCIREG_TEST_EVENTS_CRASH_AT"
POINTS = ("intended", "committed")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def crash_at(point: str) -> None:
    journal, group, settle = Producer.journal, Producer._write_group, Producer._settle
    try_group = Producer._try_write_group

    def journal_then_die(self: Producer, change: Change) -> Settle | None:
        settles = journal(self, change)
        if point == "intended" and settles is not None:
            _die()
        return settles

    def group_then_die(self: Producer, changes: list[Any]) -> list[Settle | None]:
        settles = group(self, changes)  # a push's, written by the group writer
        if point == "intended" and any(each is not None for each in settles):
            _die()
        return settles

    def try_group_then_die(self: Producer, changes: list[Any]) -> list[Settle | None] | None:
        settles = try_group(self, changes)  # a push's, written on the event loop
        if point == "intended" and settles is not None and any(each for each in settles):
            _die()
        return settles

    def die_then_settle(self: Producer, seqs: list[int], committed: bool) -> Any:
        if point == "committed" and committed:
            _die()
        return settle(self, seqs, committed)

    Producer.journal = journal_then_die  # type: ignore[method-assign]
    Producer._write_group = group_then_die  # type: ignore[method-assign]
    Producer._try_write_group = try_group_then_die  # type: ignore[method-assign]
    Producer._settle = die_then_settle  # type: ignore[method-assign]


if __name__ == "__main__":
    point = os.environ.get(CRASH_AT, "")
    if point not in POINTS:
        raise SystemExit(f"{CRASH_AT} is one of {', '.join(POINTS)}")
    crash_at(point)
    raise SystemExit(main(sys.argv[1:]))
