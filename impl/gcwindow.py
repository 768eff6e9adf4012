"""``storage.gcTimeWindow``: the daily UTC window in which a GC round may start, as zot reads it.

``"HH:MM-HH:MM"``, start included and end excluded; a start after the end wraps past midnight
(``"22:00-06:00"``). A round that starts inside the window runs to the end even past it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

_MINUTES_PER_DAY = 24 * 60


def _minutes(text: str, window: str) -> int:
    hours, colon, minutes = text.strip().partition(":")
    if not (colon and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"invalid gcTimeWindow {window!r}: use HH:MM-HH:MM (UTC)")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"invalid gcTimeWindow {window!r}: {text.strip()} is not a time of day")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class TimeWindow:
    start: int  # minutes after midnight UTC
    end: int

    @classmethod
    def parse(cls, window: str) -> TimeWindow:
        start, dash, end = window.partition("-")
        if not dash:
            raise ValueError(f"invalid gcTimeWindow {window!r}: use HH:MM-HH:MM (UTC)")
        parsed = cls(_minutes(start, window), _minutes(end, window))
        if parsed.start == parsed.end:
            raise ValueError(f"invalid gcTimeWindow {window!r}: start and end are equal")
        return parsed

    def seconds_until_open(self, when: float | None = None) -> float:
        """0 inside the window, else the seconds until it next opens."""
        now = time.time() if when is None else when
        if self.contains(now):
            return 0.0
        moment = time.gmtime(now)
        into_day = moment.tm_hour * 3600 + moment.tm_min * 60 + moment.tm_sec + now % 1
        return (self.start * 60 - into_day) % (_MINUTES_PER_DAY * 60)

    def contains(self, when: float | None = None) -> bool:
        """Whether ``when`` (a Unix time; now by default) falls inside the window."""
        moment = time.gmtime(time.time() if when is None else when)
        minute = (moment.tm_hour * 60 + moment.tm_min) % _MINUTES_PER_DAY
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end
