from __future__ import annotations

import pytest

from ocireg.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600.0),
        ("90m", 5400.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("0", 0.0),
        ("2h45m30s", 9930.0),
    ],
)
def test_go_duration_strings(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_a_bare_number_is_nanoseconds_as_in_zot() -> None:
    assert parse_duration(3_600_000_000_000) == pytest.approx(3600.0)


@pytest.mark.parametrize("bad", ["", "1d", "h", "1h 30m", "-1h", "one hour", True, -5])
def test_invalid_durations_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"), [(3600, "1h"), (5400, "1h30m"), (0, "0s"), (0.5, "500ms")]
)
def test_format_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
