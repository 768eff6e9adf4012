"""``ocireg conformance``: run the suite in-process with pytest and report per workflow."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ocireg.conformance.client import WATCH_KEY
from ocireg.conformance.report import Check, Report
from ocireg.conformance.settings import WORKFLOWS

SUITE = Path(__file__).resolve().parent
INI = "[pytest]\naddopts = -p no:cacheprovider -p no:benchmark\nxfail_strict = true\n"


@dataclass
class Options:
    url: str
    workflows: list[str]
    env: dict[str, str]
    junit: Path | None = None
    html: Path | None = None
    verbose: bool = False


class Collector:
    """A pytest plugin that keeps each check's outcome, tagged with its workflow."""

    def __init__(self, report: Report) -> None:
        self.report = report

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.failed or report.skipped):
            return
        workflow = dict(report.user_properties).get("workflow")
        if workflow not in self.report.selected:
            return
        message = ""
        if report.failed:
            message = _failure_text(report)
        elif report.skipped and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2])
        name = report.nodeid.split("::")[-1]
        self.report.checks.append(Check(str(workflow), name, report.outcome, message))

    @pytest.hookimpl
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Leave out the workflows not asked for, so reports list only what ran."""
        keep, drop = [], []
        for item in items:
            marker = item.get_closest_marker("workflow")
            chosen = marker is not None and marker.args[0] in self.report.selected
            (keep if chosen else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    @pytest.hookimpl
    def pytest_itemcollected(self, item: pytest.Item) -> None:
        marker = item.get_closest_marker("workflow")
        if marker is not None:
            item.user_properties.append(("workflow", marker.args[0]))

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.report.deviations = list(session.config.stash[WATCH_KEY].found)


def _failure_text(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = str(crash.message) if crash is not None else str(report.longrepr)
    return text.removeprefix("ocireg.conformance.checks.ConformanceFailure: ")


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(options: Options) -> tuple[int, Report]:
    """Run the chosen workflows against ``options.url``; 0 when every check passed."""
    env = {env: "0" for env in WORKFLOWS.values()}
    env.update({WORKFLOWS[name]: "1" for name in options.workflows})
    env.update(options.env)
    env["OCI_ROOT_URL"] = options.url
    report = Report(options.url, options.workflows)
    with tempfile.TemporaryDirectory() as scratch, _environment(env):
        ini = Path(scratch) / "pytest.ini"
        ini.write_text(INI)
        args = [str(SUITE), "-c", str(ini), "--rootdir", str(SUITE), "--import-mode=importlib"]
        args += (
            ["-q", "-rN", "--no-header", "--tb=no"] if not options.verbose else ["-v", "--tb=short"]
        )
        if options.junit:
            args += ["--junitxml", str(options.junit), "-o", "junit_suite_name=oci-conformance"]
        status = pytest.main(args, plugins=[Collector(report)])
    if status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        report.aborted = f"pytest ended with {pytest.ExitCode(status).name} (see its output above)"
    if options.html:
        report.write_html(options.html)
    return (0 if report.ok else 1), report
