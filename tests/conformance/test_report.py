"""The suite's summary and HTML report say what ran, why checks were skipped, and never
'passed' for an aborted run; the HTML page is a document one can hand to someone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from ocireg import __version__
from ocireg.conformance.report import Check, Report
from ocireg.conformance.schema import Deviation

SPEC_LINK = "https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pushing-blobs"


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


def test_summary_says_why_each_check_was_skipped() -> None:
    report = Report("http://r", ["management"])
    report.checks = [
        Check("management", "test_delete_tag", "skipped", "the registry does not delete tags"),
        Check("management", "test_delete_blob", "passed"),
    ]
    lines = report.summary().splitlines()
    assert "SKIPPED management::test_delete_tag: the registry does not delete tags" in lines
    assert lines[-1] == "result: passed"


def test_summary_counts_the_opaque_departures_it_left_out() -> None:
    report = Report("http://r", ["pull"], checks=[Check("pull", "test_a", "passed")])
    report.deviations = [Deviation("GET", f"/v2/r/x{i}", 500, "unknown status") for i in range(25)]
    report.opaque_left_out = 57
    lines = report.summary().splitlines()
    assert "25 response(s) depart from spec/openapi.yaml:" in lines
    assert sum(line.startswith("  GET /v2/r/x") for line in lines) == 20
    assert "  ... and 5 more (the HTML report lists them all)" in lines
    assert any(line.startswith("57 departures in opaque values left out") for line in lines)


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


class Page(HTMLParser):
    """What a reader of the page gets: its text, its links, and its tables as rows of cells."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self.style = ""
        self._href: str | None = None
        self._link_text = ""
        self._cell: list[str] | None = None
        self._in_style = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._link_text = dict(attrs).get("href") or "", ""
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "style":
            self._in_style = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._link_text))
            self._href = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
            return
        self.text.append(data)
        if self._href is not None:
            self._link_text += data
        if self._cell is not None:
            self._cell.append(data)


def _sample() -> Report:
    report = Report(
        "https://registry.example.com",
        ["pull", "push", "clients"],
        options={"Workflows": "pull, push, clients", "Credentials": "user ci"},
    )
    report.started = datetime(2025, 6, 11, 14, 3, 5, tzinfo=UTC)
    report.finished = report.started + timedelta(seconds=75)
    failure = f"spec §Push: 500 {'x' * 400}\n  see {SPEC_LINK}"
    report.checks = [
        Check("pull", "test_get_blob", "passed"),
        Check("pull", "test_head_blob", "passed"),
        Check("push", "test_single_post", "failed", failure),
        Check("push", "test_post_then_put", "passed"),
        Check("clients", "test_skopeo", "skipped", "skopeo is not on PATH (apt install skopeo)"),
    ]
    report.deviations = [Deviation("GET", "/v2/r/referrers/sha256:1", 404, "Unknown status")]
    report.opaque_left_out = 3
    return report


def test_html_report_has_a_summary_table_per_workflow(tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    _sample().write_html(page_file)
    page = Page(page_file.read_text())
    summary = page.tables[0]
    assert summary[0] == ["Workflow", "Specification", "Passed", "Failed", "Skipped", "Result"]
    rows = {row[0]: row[1:] for row in summary[1:]}
    assert rows == {
        "Pull": ["§Pull", "2", "0", "0", "ok"],
        "Push": ["§Push", "1", "1", "0", "FAIL"],
        "Real clients (opt-in)": ["—", "0", "0", "1", "skip"],
    }
    text = " ".join(page.text)
    assert "Failed: 1 of 5 checks failed, 1 skipped" in text


def test_html_report_says_what_was_checked_when_and_how(tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    _sample().write_html(page_file)
    page = Page(page_file.read_text())
    text = " ".join(" ".join(page.text).split())
    assert "Target https://registry.example.com" in text
    assert "Date 2025-06-11 14:03:05 UTC (took 1 min 15 s)" in text
    assert f"Tool ocireg {__version__}" in text
    assert "Workflows pull, push, clients" in text and "Credentials user ci" in text
    assert "skopeo is not on PATH (apt install skopeo)" in text  # the skip says why
    assert "3 departures in opaque values left out" in text
    assert "<title>OCI conformance of https://registry.example.com</title>" in (
        page_file.read_text()
    )


def test_html_report_links_are_links_and_long_text_wraps(tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    _sample().write_html(page_file)
    page = Page(page_file.read_text())
    assert (SPEC_LINK, SPEC_LINK) in page.links  # the URL in the failure message
    hrefs = {href for href, _ in page.links}
    assert "https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md#pull" in hrefs
    assert {"#pull", "#push", "#clients"} <= hrefs  # the summary leads to each workflow
    style = page.style.replace(" ", "")
    assert "white-space:pre-wrap" in style and "overflow-wrap:anywhere" in style
    assert "table-layout:fixed" in style
