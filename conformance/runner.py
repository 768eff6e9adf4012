"""``ocireg conformance``: run the suite in-process with pytest and report per workflow.

What the user sees is the suite's own: a progress line and the summary of the report. pytest's
terminal output (its header, warnings, "N deselected", the plugin lines) is left out unless
``-v`` asks for it, and nothing is written to the current directory: pytest's cache is off and
Hypothesis keeps its files in a scratch directory that goes away with the run.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pytest

from ocireg.conformance.client import WATCH_KEY
from ocireg.conformance.report import Check, Report
from ocireg.conformance.settings import WORKFLOWS, Settings

SUITE = Path(__file__).resolve().parent
# Where each workflow's checks live: only the chosen ones are collected, so nothing is
# deselected and an opt-in workflow's imports (schemathesis, oras) cost nothing when not chosen.
WORKFLOW_PATHS = {
    "pull": "test_pull.py",
    "push": "test_push.py",
    "discovery": "test_discovery.py",
    "management": "test_management.py",
    "main": "test_spec_main.py",
    "clients": "clients",
    "fuzz": "test_fuzz.py",
}
# The CLI has imported httpx (and so anyio, a pytest plugin) before pytest starts, which pytest
# warns it cannot assert-rewrite: true, and of no interest to someone checking a registry.
INI = """\
[pytest]
addopts = -p no:cacheprovider -p no:benchmark
xfail_strict = true
filterwarnings =
    ignore::pytest.PytestAssertRewriteWarning
"""
PROGRESS = {"passed": ".", "failed": "F", "skipped": "s"}


@dataclass
class Options:
    url: str
    workflows: list[str]
    env: dict[str, str]
    junit: Path | None = None
    html: Path | None = None
    verbose: bool = False


def _workflow_of(path: str) -> str | None:
    """The workflow whose checks live at ``path`` (a file or directory of the suite)."""
    try:
        relative = Path(path).resolve().relative_to(SUITE).parts
    except ValueError:
        return None
    for name, where in WORKFLOW_PATHS.items():
        if relative and relative[0] == where:
            return name
    return None


class Collector:
    """A pytest plugin that keeps each check's outcome, tagged with its workflow."""

    def __init__(self, report: Report, progress: TextIO | None) -> None:
        self.report = report
        self.progress = progress

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
        elif report.skipped:
            message = _skip_reason(report)
        name = report.nodeid.split("::")[-1]
        self._add(Check(str(workflow), name, report.outcome, message))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Keep the message of an exception group (schemathesis reports its findings as one):
        pytest's own summary of it is the repr of the first member."""
        report: pytest.TestReport = yield
        error = call.excinfo.value if call.excinfo is not None else None
        if isinstance(error, BaseExceptionGroup):
            report.user_properties.append(("group_message", _group_text(error.message)))
        return report

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A module that cannot run at all (a missing extra, an import error) is reported as
        one check of its workflow rather than lost with pytest's own output."""
        if report.passed:
            return
        workflow = _workflow_of(report.fspath) if report.nodeid else None
        if workflow is None:
            if report.failed:  # the suite itself (its conftest) did not load: say why
                self.report.aborted = f"could not load the suite: {report.longreprtext}"
            return
        name = Path(report.fspath).stem
        if report.skipped:
            self._add(Check(workflow, name, "skipped", _skip_reason(report)))
        else:
            self._add(Check(workflow, name, "failed", f"could not load: {report.longreprtext}"))

    @pytest.hookimpl
    def pytest_itemcollected(self, item: pytest.Item) -> None:
        marker = item.get_closest_marker("workflow")
        if marker is not None:
            item.user_properties.append(("workflow", marker.args[0]))

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.progress is not None:
            print(file=self.progress, flush=True)
        watch = session.config.stash.get(WATCH_KEY, None)
        if watch is not None:
            self.report.deviations = list(watch.found)
            self.report.opaque_left_out = watch.opaque_left_out

    def _add(self, check: Check) -> None:
        self.report.checks.append(check)
        if self.progress is not None:
            print(PROGRESS.get(check.outcome, "?"), end="", file=self.progress, flush=True)


def _group_text(message: str) -> str:
    """Schemathesis's "found N distinct failures" message, findings first: the first line
    names the first finding and its status, the rest is as schemathesis wrote it."""
    lines = message.strip().splitlines()
    if lines and lines[0].startswith("Schemathesis found"):
        lines = lines[1:]
    body = [line for line in lines if line.strip()]
    if not body:
        return message
    first = body[0].strip().removeprefix("- ")
    if len(body) > 1 and body[1].startswith("["):
        first += f": {body[1].strip().rstrip(':')}"
    return first + "\n" + "\n".join(lines).strip("\n")


def _failure_text(report: pytest.TestReport | pytest.CollectReport) -> str:
    grouped = dict(getattr(report, "user_properties", ())).get("group_message")
    if grouped:
        return str(grouped)
    crash = getattr(report.longrepr, "reprcrash", None)
    text = str(crash.message) if crash is not None else str(report.longrepr)
    return text.removeprefix("ocireg.conformance.checks.ConformanceFailure: ")


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


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


def _shown_options(settings: Settings, workflows: list[str]) -> dict[str, str]:
    """The options a run used, as its report lists them (never the password)."""
    crossmount = settings.automatic_crossmount
    shown = {
        "Workflows": ", ".join(workflows),
        "Namespace": settings.namespace,
        "Cross-mount namespace": settings.crossmount_namespace,
        "Schema check": settings.schema,
        "Automatic cross-mount": "either" if crossmount is None else str(crossmount).lower(),
        "Credentials": f"user {settings.username}" if settings.username else "anonymous",
        "TLS verification": "on" if settings.tls_verify else "off",
    }
    if "fuzz" in workflows:
        shown["Fuzz examples"] = os.environ.get("OCI_FUZZ_EXAMPLES") or "50"
    return shown


def _pytest_args(options: Options, ini: Path) -> list[str]:
    paths = [str(SUITE / WORKFLOW_PATHS[name]) for name in options.workflows]
    args = [*paths, "-c", str(ini), "--rootdir", str(SUITE), "--import-mode=importlib"]
    if options.verbose:
        args += ["-v", "--tb=short", "--no-header"]
    else:
        args += ["-p", "no:terminal"]  # the suite prints its own progress and summary
    if options.junit:
        args += ["--junitxml", str(options.junit), "-o", "junit_suite_name=oci-conformance"]
    return args


def run(options: Options) -> tuple[int, Report]:
    """Run the chosen workflows against ``options.url``; 0 when every check passed."""
    env = {env: "0" for env in WORKFLOWS.values()}
    env.update({WORKFLOWS[name]: "1" for name in options.workflows})
    env.update(options.env)
    env["OCI_ROOT_URL"] = options.url
    report = Report(options.url, options.workflows)
    progress = None if options.verbose else sys.stdout
    with tempfile.TemporaryDirectory(prefix="ocireg-conformance-") as scratch:
        # Hypothesis (under schemathesis) writes .hypothesis/ into the current directory.
        env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(Path(scratch) / "hypothesis")
        ini = Path(scratch) / "pytest.ini"
        ini.write_text(INI)
        with _environment(env):
            try:
                settings = Settings.from_env()
            except ValueError as error:  # a bad OCI_* variable: say which, run nothing
                report.aborted = str(error)
                return 2, report
            report.options = _shown_options(settings, options.workflows)
            status = pytest.main(_pytest_args(options, ini), plugins=[Collector(report, progress)])
    if status not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not report.aborted:
        report.aborted = f"pytest ended with {pytest.ExitCode(status).name}"
    report.finish()
    if options.html:
        report.write_html(options.html)
    return (0 if report.ok else 1), report
