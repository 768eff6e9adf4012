"""What a run found, per workflow: the summary printed at the end and the HTML report."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from ocireg.conformance.schema import Deviation
from ocireg.conformance.settings import WORKFLOW_TITLES

OUTCOMES = ("passed", "failed", "skipped")


@dataclass
class Check:
    workflow: str
    name: str
    outcome: str
    message: str = ""


@dataclass
class Report:
    url: str
    selected: list[str]
    checks: list[Check] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)
    aborted: str | None = None  # why the run did not complete, when it did not

    @property
    def ok(self) -> bool:
        return not self.failed and self.aborted is None and bool(self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.outcome == "failed"]

    def counts(self, workflow: str) -> dict[str, int]:
        mine = [check for check in self.checks if check.workflow == workflow]
        return {outcome: sum(c.outcome == outcome for c in mine) for outcome in OUTCOMES}

    def workflows(self) -> list[str]:
        return [name for name in WORKFLOW_TITLES if name in self.selected]

    def summary(self) -> str:
        lines = [f"OCI conformance of {self.url}"]
        for workflow in self.workflows():
            counts = self.counts(workflow)
            verdict = "FAIL" if counts["failed"] else "ok"
            lines.append(
                f"  {WORKFLOW_TITLES[workflow]:<28} {verdict:<4} "
                + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES)
            )
        for check in self.failed:
            first = check.message.strip().splitlines()[0] if check.message.strip() else ""
            lines.append(f"FAILED {check.workflow}::{check.name}: {first}")
        if self.deviations:
            lines.append(f"{len(self.deviations)} response(s) depart from spec/openapi.yaml:")
            lines += [f"  {deviation}" for deviation in self.deviations[:20]]
        if self.aborted:
            lines.append(f"the suite did not complete: {self.aborted}")
        elif not self.checks:
            lines.append("no check ran")
        lines.append("result: " + ("passed" if self.ok else "FAILED"))
        return "\n".join(lines)

    def write_html(self, path: Path) -> None:
        rows = "\n".join(
            f"<tr class={check.outcome}><td>{html.escape(WORKFLOW_TITLES[check.workflow])}</td>"
            f"<td>{html.escape(check.name)}</td><td>{check.outcome}</td>"
            f"<td><pre>{html.escape(check.message)}</pre></td></tr>"
            for check in self.checks
        )
        deviations = "".join(f"<li>{html.escape(str(d))}</li>" for d in self.deviations)
        path.write_text(
            "<!doctype html><meta charset=utf-8><title>OCI conformance</title>"
            "<style>body{font-family:sans-serif}td{vertical-align:top;padding:2px 8px}"
            ".failed{background:#fdd}.skipped{color:#888}pre{white-space:pre-wrap;margin:0}</style>"
            f"<h1>OCI conformance of {html.escape(self.url)}</h1>"
            f"<p>{html.escape(self.summary()).splitlines()[0]}</p>"
            "<table><tr><th>workflow<th>check<th>outcome<th>why</tr>"
            f"{rows}</table>"
            f"<h2>Schema deviations ({len(self.deviations)})</h2><ul>{deviations}</ul>"
        )
