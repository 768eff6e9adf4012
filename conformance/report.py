"""What a run found, per workflow: the summary printed at the end, and the HTML report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ocireg import __version__
from ocireg.conformance.html_report import render
from ocireg.conformance.schema import Deviation
from ocireg.conformance.settings import WORKFLOW_TITLES

OUTCOMES = ("passed", "failed", "skipped")
DEVIATIONS_SHOWN = 20  # on the console; the HTML report lists them all
OPAQUE_NOTE = (
    "upload session IDs in Location and Docker-Upload-UUID, whose form the spec leaves to "
    "the registry"
)


@dataclass
class Check:
    workflow: str
    name: str
    outcome: str
    message: str = ""

    @property
    def first_line(self) -> str:
        text = self.message.strip()
        return text.splitlines()[0] if text else ""


@dataclass
class Report:
    url: str
    selected: list[str]
    options: dict[str, str] = field(default_factory=dict)  # as the run used them, no secrets
    checks: list[Check] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)
    opaque_left_out: int = 0  # schema departures in opaque values, not reported one by one
    aborted: str | None = None  # why the run did not complete, when it did not
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished: datetime | None = None
    version: str = __version__

    def finish(self) -> None:
        self.finished = datetime.now(UTC)

    @property
    def ok(self) -> bool:
        return not self.failed and self.aborted is None and bool(self.checks)

    @property
    def failed(self) -> list[Check]:
        return self.having("failed")

    def having(self, outcome: str) -> list[Check]:
        return [check for check in self.checks if check.outcome == outcome]

    def of(self, workflow: str) -> list[Check]:
        return [check for check in self.checks if check.workflow == workflow]

    def counts(self, workflow: str) -> dict[str, int]:
        mine = self.of(workflow)
        return {outcome: sum(c.outcome == outcome for c in mine) for outcome in OUTCOMES}

    def workflows(self) -> list[str]:
        return [name for name in WORKFLOW_TITLES if name in self.selected]

    def verdict(self, workflow: str) -> str:
        counts = self.counts(workflow)
        if counts["failed"]:
            return "FAIL"
        if counts["passed"]:
            return "ok"
        return "skip" if counts["skipped"] else "none"  # every check skipped, or none ran

    def opaque_line(self) -> str:
        return f"{self.opaque_left_out} departures in opaque values left out ({OPAQUE_NOTE})"

    def summary(self) -> str:
        lines = [f"OCI conformance of {self.url}"]
        for workflow in self.workflows():
            counts = self.counts(workflow)
            lines.append(
                f"  {WORKFLOW_TITLES[workflow]:<28} {self.verdict(workflow):<4} "
                + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES)
            )
        for outcome in ("failed", "skipped"):
            lines += [
                f"{outcome.upper()} {check.workflow}::{check.name}: {check.first_line}"
                for check in self.having(outcome)
            ]
        if self.deviations:
            lines.append(f"{len(self.deviations)} response(s) depart from spec/openapi.yaml:")
            lines += [f"  {deviation}" for deviation in self.deviations[:DEVIATIONS_SHOWN]]
            if len(self.deviations) > DEVIATIONS_SHOWN:
                more = len(self.deviations) - DEVIATIONS_SHOWN
                lines.append(f"  ... and {more} more (the HTML report lists them all)")
        if self.opaque_left_out:
            lines.append(self.opaque_line())
        if self.aborted:
            lines.append(f"the suite did not complete: {self.aborted}")
        elif not self.checks:
            lines.append("no check ran")
        lines.append("result: " + ("passed" if self.ok else "FAILED"))
        return "\n".join(lines)

    def write_html(self, path: Path) -> None:
        path.write_text(render(self), encoding="utf-8")
