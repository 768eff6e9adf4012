"""Measure every request, count pushes and pulls per repository, and serve the metrics.

Only repositories that exist get a ``repo`` label, and at most ``prometheus.maxRepoLabels`` of
them per process (the first seen); requests to others are counted under ``repo="_other"``, so no
stream of requests for made-up names can grow the label set. A scrape is rendered in a thread.
Without ``accessControl.metrics``, a caller sees the series of the repositories it may read only.

With ``ocireg serve``, ``prepare`` points prometheus_client's multiprocess mode at
``<rootDirectory>/.ocireg/metrics`` before any worker starts, so counters and histograms from
every worker are summed at scrape time whichever worker answers. An app built in-process
without ``ocireg serve`` keeps its metrics in memory.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocireg.auth.identity import identity_of
from ocireg.config import Config
from ocireg.extensions.runtime import SetupContext
from ocireg.names import name_problem, repository_of
from ocireg.registry import layout
from ocireg.registry.offloop import run_storage_work
from ocireg.registry.routes import Routed
from ocireg.state import AppState

from . import MetricsSettings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})
OTHER = "_other"  # never a repository name: names start with a lower-case letter or digit
_REPO_LABEL = re.compile(rb'repo="([^"]*)"')


def metrics_directory(config: Config) -> Path:
    return config.resolved_root() / ".ocireg" / "metrics"


def prepare(config: Config, _settings: MetricsSettings) -> None:
    """Start from an empty multiprocess directory: files of a previous run would be summed."""
    directory = metrics_directory(config)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)


class RepoLabels:
    """The ``repo`` label value for a request path: the repository when it exists and is
    among the first ``limit`` seen, OTHER for a further one, None when there is none."""

    def __init__(self, registry: Routed, limit: int) -> None:
        self.registry = registry
        self.limit = limit
        self._given: set[str] = set()
        self._lock = threading.Lock()  # (a lookup that asks S3 is made in a thread)

    def asks_storage(self, path: str) -> bool:
        """Whether labelling ``path`` makes a request to storage (S3): a repository not
        labelled yet, on a driver that asks over the network."""
        repo = repository_of(path)
        if repo is None or repo in self._given or name_problem(repo) is not None:
            return False
        return self.registry.of(repo).driver.blob_check_is_request

    def __call__(self, path: str) -> str | None:
        repo = repository_of(path)
        if repo is None:
            return None
        if repo in self._given:
            return repo
        if name_problem(repo) is not None:  # a/../b, a//b: no repository, nor a path to ask
            return None
        if not self.registry.of(repo).driver.exists(layout.index_file(repo)):
            return None  # 401, 400 and 404 answers for made-up names: no label
        with self._lock:
            if repo not in self._given and len(self._given) >= self.limit:
                return OTHER
            self._given.add(repo)
        return repo


class Metrics:
    def __init__(self, labels: RepoLabels) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.labels = labels
        self.scrape: Any = None  # what a scrape collects from; set by setup

        # A registry of our own: in-process apps (tests, embedders) may build several.
        self.own = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "zot_http_requests",
            "HTTP requests by method and status.",
            ["method", "code"],
            registry=self.own,
        )
        self.method_latency = Histogram(
            "zot_http_method_latency_seconds",
            "Request duration by method.",
            ["method"],
            registry=self.own,
        )
        self.repo_latency = Histogram(
            "zot_http_repo_latency_seconds",
            "Request duration by repository.",
            ["repo"],
            registry=self.own,
        )
        self.uploads = Counter(
            "zot_repo_uploads", "Manifests pushed per repository.", ["repo"], registry=self.own
        )
        self.downloads = Counter(
            "zot_repo_downloads", "Manifests pulled per repository.", ["repo"], registry=self.own
        )

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, str(status)).inc()
        self.method_latency.labels(method).observe(seconds)
        repo = self.labels(path)
        if repo is None:
            return
        self.repo_latency.labels(repo).observe(seconds)
        if "/manifests/" in path:
            if method == "PUT" and status == 201:
                self.uploads.labels(repo).inc()
            elif method == "GET" and status == 200:
                self.downloads.labels(repo).inc()


class MeasureRequests:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            observed = (self.metrics.observe, scope["method"], scope["path"], status, elapsed)
            # a repository not labelled yet is looked for in storage: on S3, off the loop
            await run_storage_work(self.metrics.labels.asks_storage(scope["path"]), *observed)


class Exposition:
    """The scrape endpoint: GET or HEAD, Prometheus' text format, rendered in a thread (it
    reads every worker's files and sizes every repository)."""

    def __init__(self, registry: Any, state: AppState) -> None:
        self.registry = registry
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        import anyio.to_thread
        from prometheus_client import CONTENT_TYPE_LATEST

        if scope["method"] not in ("GET", "HEAD"):
            headers = [(b"allow", b"GET, HEAD"), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 405, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        body = await anyio.to_thread.run_sync(self._render, self._reader(scope))
        headers = [
            (b"content-type", CONTENT_TYPE_LATEST.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )

    def _reader(self, scope: Scope) -> Any:
        """Who decides which repositories' series the caller sees: None for all of them (no
        access control, or a caller accessControl.metrics lets in, which is trusted with
        every name), else the caller's read permission."""
        guard = self.state.guard
        policy = guard.access.config if guard is not None else None
        if guard is None or (policy is not None and policy.metrics is not None):
            return None
        who = identity_of(scope)
        return lambda repo: guard.access.allows(who, "read", repo)

    def _render(self, may_read: Any) -> bytes:
        from prometheus_client import generate_latest

        body: bytes = generate_latest(self.registry)
        if may_read is None:
            return body
        kept = []
        for line in body.split(b"\n"):
            found = _REPO_LABEL.search(line)
            hidden = found is not None and found[1] != OTHER.encode()
            if hidden and not may_read(found[1].decode()):  # type: ignore[index]
                continue
            kept.append(line)
        return b"\n".join(kept)


def _scrape_registry(metrics: Metrics, context: SetupContext) -> Any:
    from prometheus_client import CollectorRegistry, ProcessCollector, multiprocess

    from ..mgmt.handlers import binary_type, installed_names
    from .collectors import InfoCollector, StorageCollector, WorkerProcessCollector

    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        scrape = CollectorRegistry()
        multiprocess.MultiProcessCollector(scrape, path=directory)  # type: ignore[no-untyped-call]
        scrape.register(WorkerProcessCollector(Path(directory)))
    else:
        scrape = metrics.own
        ProcessCollector(registry=scrape)
    scrape.register(StorageCollector(context.registries, metrics.labels.limit))
    scrape.register(InfoCollector(binary_type(installed_names(context))))
    path = getattr(context.app.meta, "path", None)
    if path is not None and _cve_enabled(context):
        from ..cve.metrics import CveCollector

        scrape.register(CveCollector(path))
    return scrape


def _cve_enabled(context: SetupContext) -> bool:
    """CVE scanning is configured (``extensions.search.cve``): its figures are served too."""
    search = next((e for e in context.everything if e.name == "search"), None)
    return search is not None and getattr(search.settings, "cve", None) is not None


def setup(context: SetupContext) -> Metrics:
    from .background import GCMetrics, SchedulerMetrics

    settings: MetricsSettings = context.settings
    metrics = Metrics(RepoLabels(context.registries, settings.prometheus.maxRepoLabels))
    context.scheduler.listeners.append(SchedulerMetrics(metrics.own))
    context.app.gc.listeners.append(GCMetrics(metrics.own))
    # kept on the state: another extension registers its own collectors there (events)
    metrics.scrape = _scrape_registry(metrics, context)
    exposition = Exposition(metrics.scrape, context.app)
    context.add_route(settings.prometheus.path, exposition, access="metrics")
    context.add_middleware(lambda app: MeasureRequests(app, metrics))
    return metrics
