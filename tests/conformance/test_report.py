"""The suite's summary and HTML report say what ran, and never 'passed' for an aborted run."""

from __future__ import annotations

from pathlib import Path

from ocireg.conformance.report import Check, Report


def test_summary_counts_per_selected_workflow() -> None:
    report = Report("http://r", ["pull", "push"])
    report.checks = [
        Check("pull", "test_a", "passed"),
        Check("push", "test_b", "failed", "spec §Push: answered 500\n  see https://x"),
        Check("push", "test_c", "skipped", "not supported"),
    ]
    lines = report.summary().splitlines()
    assert lines[1].split() == ["Pull", "ok", "1", "passed,", "0", "failed,", "0", "skipped"]
    assert lines[2].split()[:2] == ["Push", "FAIL"]
    assert "FAILED push::test_b: spec §Push: answered 500" in lines
    assert lines[-1] == "result: FAILED"
    assert not report.ok


def test_an_aborted_or_empty_run_never_passes() -> None:
    empty = Report("http://r", ["pull"])
    assert empty.summary().splitlines()[-2:] == ["no check ran", "result: FAILED"]
    aborted = Report("http://r", ["pull"], checks=[Check("pull", "test_a", "passed")])
    aborted.aborted = "pytest ended with INTERRUPTED"
    assert aborted.summary().splitlines()[-1] == "result: FAILED"
    assert not aborted.ok


def test_html_escapes_what_registries_answer(tmp_path: Path) -> None:
    report = Report(
        "http://r", ["pull"], checks=[Check("pull", "t", "failed", "<script>x</script>")]
    )
    page = tmp_path / "r.html"
    report.write_html(page)
    text = page.read_text()
    assert "<script>x" not in text and "&lt;script&gt;x" in text
