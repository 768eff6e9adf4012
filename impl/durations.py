"""Go-style durations, as zot's configuration writes them: "1h", "90m", "1h30m", "500ms"."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(value: str | int | float) -> float:
    """Seconds in a Go duration string.

    A bare number is nanoseconds, as zot (Go's ``time.Duration``) reads it, so a zot file means the
    same thing here; write ``"1h"`` rather than ``3600000000000``.
    """
    if isinstance(value, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value) * 1e-9
    text = value.strip()
    if text in ("0", ""):
        if text == "":
            raise ValueError("empty duration")
        return 0.0
    position, total = 0, 0.0
    while position < len(text):
        match = _PART.match(text, position)
        if match is None:
            raise ValueError(f"invalid duration {value!r}: use forms like 1h, 30m, 1h30m, 500ms")
        total += float(match[1]) * _UNITS[match[2]]
        position = match.end()
    return total


def format_duration(seconds: float) -> str:
    """The shortest Go-style spelling of a whole number of seconds (fractions as ms)."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    remaining, parts = int(seconds), []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return "".join(parts) or "0s"


# A duration in a configuration model: seconds in Python, a Go duration string in JSON.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    Field(
        json_schema_extra={
            "type": ["string", "number"],
            "description": "Go duration such as 1h30m; a bare number is nanoseconds, as in zot",
        }
    ),
]
