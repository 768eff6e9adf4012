"""The HTML report: one page to hand to someone, that also reads well as a screenshot.

A verdict, what was checked and how (target, date, tool version, options), a summary per
workflow, then each workflow's checks with the reason for every failure and skip, and the
schema departures. URLs in messages (the spec sections) become links; long text wraps.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

from ocireg.conformance.checks import MAIN_URL, SPEC_URL
from ocireg.conformance.settings import WORKFLOW_TITLES

if TYPE_CHECKING:
    from ocireg.conformance.report import Check, Report

# The spec section each workflow follows; the opt-in ones that are not the spec's have none.
WORKFLOW_SPEC = {
    "pull": (f"{SPEC_URL}#pull", "§Pull"),
    "push": (f"{SPEC_URL}#push", "§Push"),
    "discovery": (f"{SPEC_URL}#content-discovery", "§Content Discovery"),
    "management": (f"{SPEC_URL}#content-management", "§Content Management"),
    "main": (MAIN_URL, "the spec's main branch"),
}
_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:)]")

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;
 margin:0;background:#f6f8fa}
main{max-width:1180px;margin:0 auto;padding:24px 32px;background:#fff;min-height:100vh;
 box-sizing:border-box}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;
 border-bottom:1px solid #d0d7de;padding-bottom:4px}
a{color:#0969da}code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0}
.verdict{display:inline-block;font-weight:600;font-size:17px;padding:6px 14px;
 border-radius:6px;margin:8px 0 16px}
.verdict.passed{background:#dafbe1;color:#116329}.verdict.failed{background:#ffebe9;color:#a40e26}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.meta dt{font-weight:600;color:#57606a}dl.meta dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{text-align:left;vertical-align:top;padding:6px 10px;border-bottom:1px solid #eaeef2;
 overflow-wrap:anywhere}
th{background:#f6f8fa;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td:first-child{box-shadow:inset 4px 0 #cf222e}
tr.skipped td:first-child{box-shadow:inset 4px 0 #bf8700}
tr.passed td:first-child{box-shadow:inset 4px 0 #1a7f37}
.outcome{font-weight:600}.failed .outcome,.FAIL{color:#cf222e}.skipped .outcome{color:#9a6700}
.passed .outcome,.ok{color:#1a7f37}
ul.departures{padding-left:20px}ul.departures li{margin:2px 0}
.note{color:#57606a}
"""


def _text(text: str) -> str:
    """``text`` escaped for HTML, with its URLs made into links."""
    parts, start = [], 0
    for match in _URL.finditer(text):
        url = match.group(0)
        parts.append(html.escape(text[start : match.start()]))
        parts.append(f'<a href="{html.escape(url)}">{html.escape(url)}</a>')
        start = match.end()
    parts.append(html.escape(text[start:]))
    return "".join(parts)


def _link(url: str, label: str) -> str:
    return f'<a href="{html.escape(url)}">{html.escape(label)}</a>'


def _verdict(report: Report) -> str:
    total, failed = len(report.checks), len(report.failed)
    skipped = len(report.having("skipped"))
    if report.aborted:
        text = f"Did not complete: {report.aborted}"
    elif not report.checks:
        text = "Failed: no check ran"
    elif failed:
        text = f"Failed: {failed} of {total} checks failed"
    else:
        text = f"Passed: {total - skipped} of {total} checks passed"
    if skipped and report.checks:
        text += f", {skipped} skipped"
    return f'<p class="verdict {"passed" if report.ok else "failed"}">{html.escape(text)}</p>'


def _when(report: Report) -> str:
    text = report.started.strftime("%Y-%m-%d %H:%M:%S UTC")
    if report.finished is not None:
        seconds = round((report.finished - report.started).total_seconds())
        took = f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
        text += f" (took {took})"
    return html.escape(text)


def _meta(report: Report) -> str:
    rows = [
        ("Target", f"<code>{_text(report.url)}</code>"),
        ("Date", _when(report)),
        ("Tool", f"ocireg {html.escape(report.version)} <code>ocireg conformance</code>"),
        ("Specification", _link(SPEC_URL, "OCI Distribution Specification v1.1.1")),
        *((html.escape(key), f"<code>{html.escape(value)}</code>")
          for key, value in report.options.items()),
    ]  # fmt: skip
    return "<dl class=meta>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _summary(report: Report) -> str:
    rows = []
    for workflow in report.workflows():
        counts, verdict = report.counts(workflow), report.verdict(workflow)
        spec = _link(*WORKFLOW_SPEC[workflow]) if workflow in WORKFLOW_SPEC else "—"
        rows.append(
            f"<tr><td><a href='#{workflow}'>{html.escape(WORKFLOW_TITLES[workflow])}</a></td>"
            f"<td>{spec}</td>"
            + "".join(f"<td class=n>{counts[o]}</td>" for o in ("passed", "failed", "skipped"))
            + f"<td class='{verdict}'><b>{html.escape(verdict)}</b></td></tr>"
        )
    return (
        "<table class=summary><colgroup><col style='width:30%'><col style='width:25%'>"
        "<col><col><col><col></colgroup>"
        "<thead><tr><th>Workflow</th><th>Specification</th><th class=n>Passed</th>"
        "<th class=n>Failed</th><th class=n>Skipped</th><th>Result</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _check_row(check: Check) -> str:
    why = f"<pre>{_text(check.message.strip())}</pre>" if check.message.strip() else ""
    return (
        f"<tr class={check.outcome}><td><code>{html.escape(check.name)}</code></td>"
        f"<td class=outcome>{check.outcome}</td><td>{why}</td></tr>"
    )


def _workflow(report: Report, workflow: str) -> str:
    counts = report.counts(workflow)
    tally = ", ".join(f"{counts[o]} {o}" for o in ("passed", "failed", "skipped"))
    return (
        f"<h2 id={workflow}>{html.escape(WORKFLOW_TITLES[workflow])} "
        f"<span class=note>({tally})</span></h2>"
        "<table class=checks><colgroup><col style='width:34%'><col style='width:9%'><col>"
        "</colgroup><thead><tr><th>Check</th><th>Result</th><th>Why</th></tr></thead><tbody>"
        + "".join(_check_row(check) for check in report.of(workflow))
        + "</tbody></table>"
    )


def _departures(report: Report) -> str:
    items = "".join(f"<li><pre>{_text(str(d))}</pre></li>" for d in report.deviations)
    opaque = ""
    if report.opaque_left_out:
        opaque = f"<p class=note>{html.escape(report.opaque_line())}.</p>"
    intro = (
        "<p class=note>Responses whose status, headers or body do not match ocireg's published "
        "<code>spec/openapi.yaml</code>, even where the workflow itself went on.</p>"
    )
    return (
        f"<h2 id=departures>Schema departures ({len(report.deviations)})</h2>{intro}"
        + (f"<ul class=departures>{items}</ul>" if items else "<p>None.</p>")
        + opaque
    )


def render(report: Report) -> str:
    title = f"OCI conformance of {report.url}"
    body = (
        f"<h1>{html.escape(title)}</h1>{_verdict(report)}{_meta(report)}"
        f"<h2 id=summary>Summary</h2>{_summary(report)}"
        + "".join(_workflow(report, workflow) for workflow in report.workflows())
        + _departures(report)
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
