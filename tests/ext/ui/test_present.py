"""How values look on the pages (ocireg.ext.ui.present)."""

from __future__ import annotations

from datetime import UTC, datetime

from ocireg.ext.ui import present

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_a_time_is_relative_for_a_month_then_a_date() -> None:
    assert present.when("2026-12-05T11:59:30Z", NOW) == "just now"
    assert present.when("2026-12-05T09:00:00Z", NOW) == "3 hours ago"
    assert present.when("2026-11-10T12:00:00Z", NOW) == "25 days ago"
    assert present.when("2026-03-02T09:00:00Z", NOW) == "2 Mar 2026"
    assert present.when("0001-01-01T00:00:00Z", NOW) == "—"


def test_durations_read_as_people_say_them() -> None:
    assert present.duration(0.0441) == "44 ms"
    assert present.duration(4.21) == "4.2 s"
    assert present.duration(600) == "10 min"
    assert present.duration(None) == "—"


def test_the_severity_chart_leaves_out_empty_levels_most_severe_first() -> None:
    counts = {"CriticalCount": 1, "HighCount": 0, "MediumCount": 2, "UnknownCount": 1}
    chart = present.severity_chart(counts, width=100)
    assert [(s["level"], s["count"], s["x"], s["width"]) for s in chart] == [
        ("CRITICAL", 1, 0.0, 25.0),
        ("MEDIUM", 2, 25.0, 50.0),
        ("UNKNOWN", 1, 75.0, 25.0),
    ]
    assert present.severity_chart({}) == []
