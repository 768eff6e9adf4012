"""What an extension's setup function receives, and what a running extension keeps.

``setup(context)`` is called once per worker process when the app is built. It registers what the
extension adds to the request path (manifest checks, routes outside the OpenAPI spec, ASGI
middleware) and returns the extension's state, which its handlers reach with
:func:`ocireg.extensions.state`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp

from ocireg.auth.access import WORDS, Rule, parse_rule
from ocireg.config import Config
from ocireg.errors import RegistryError, error_response
from ocireg.extensions.loading import Enabled
from ocireg.registry.journal import Journal
from ocireg.registry.ondemand import OnDemand
from ocireg.registry.routes import Registries
from ocireg.registry.store import (
    ManifestCheck,
    Observer,
    PullCheck,
    RefusalListener,
    RemovalListener,
)
from ocireg.scheduler import Scheduler
from ocireg.state import AppState

Middleware = Callable[[ASGIApp], ASGIApp]
# (repository, manifest digest, media type, summary): an image's vulnerability scan finished;
# the summary is zot's ``Vulnerabilities`` (MaxSeverity, Count and the counts per severity)
ScanListener = Callable[[str, str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class Route:
    app: ASGIApp
    rule: Rule  # who may call it, as x-ocireg-access says for spec operations


@dataclass
class Hooks:
    """Everything the enabled extensions registered, in the order they registered it."""

    manifest_checks: list[ManifestCheck] = field(default_factory=list)
    pull_checks: list[PullCheck] = field(default_factory=list)
    routes: dict[str, Route] = field(default_factory=dict)
    prefixes: dict[str, Route] = field(default_factory=dict)  # "/home" serves "/home/..." too
    middleware: list[Middleware] = field(default_factory=list)
    on_demand: OnDemand | None = None
    scan_listeners: list[ScanListener] = field(default_factory=list)
    watchers: list[Middleware] = field(default_factory=list)


@dataclass
class SetupContext:
    app: AppState
    enabled: Enabled
    everything: tuple[Enabled, ...]
    hooks: Hooks

    @property
    def settings(self) -> Any:
        return self.enabled.settings

    @property
    def config(self) -> Config:
        return self.app.config

    @property
    def registries(self) -> Registries:
        """Every storage root; ``of(repo)`` is the registry holding a repository."""
        return self.app.registries

    @property
    def scheduler(self) -> Scheduler:
        """Where an extension queues background work or registers periodic jobs."""
        return self.app.scheduler

    def check_manifests(self, check: ManifestCheck) -> None:
        self.hooks.manifest_checks.append(check)

    def check_pulls(self, check: PullCheck) -> None:
        """Ask ``check(repo, digest)`` before a manifest is served (GET and HEAD), after the
        caller was authorized; it raises the RegistryError the caller gets instead."""
        self.hooks.pull_checks.append(check)

    def add_route(
        self, path: str, app: ASGIApp, access: str = "authenticated", *, prefix: bool = False
    ) -> None:
        """Serve ``path`` (exactly, any method) with a plain ASGI app, outside the OpenAPI
        spec: for what cannot be described there, such as Prometheus' ``/metrics``.
        ``access`` is who may call it, one of the x-ocireg-access words (anyone, login,
        authenticated, listing, metrics). ``prefix``: every path under ``path/`` too (a web
        UI's pages and files); the app sees the whole path."""
        where = f"extension {self.enabled.name}: route {path}"
        if not path.startswith("/") or path.startswith("/v2/") or path == "/v2":
            raise ValueError(
                f"extension {self.enabled.name}: route {path!r} must be absolute "
                "and outside /v2 (declare /v2 endpoints in an OpenAPI fragment)"
            )
        if prefix and (path == "/" or path.endswith("/")):
            raise ValueError(f"{where}: a prefix names a directory without a trailing /")
        if path in self.hooks.routes or path in self.hooks.prefixes:
            raise ValueError(f"extension {self.enabled.name}: route {path} is already taken")
        if access not in WORDS:  # a route has no path parameters to name a repository
            raise ValueError(f"{where}: access must be one of {', '.join(WORDS)}")
        rule = parse_rule(access, where)
        (self.hooks.prefixes if prefix else self.hooks.routes)[path] = Route(app, rule)

    def observe(self, observer: Observer) -> None:
        """Be told of every push, tag removal, delete, pull and repository creation, in every
        storage root, after it is in storage (see ``Observer``: record on the request path, work
        later, for example through the scheduler)."""
        for root in self.registries.roots():
            root.observers.append(observer)

    def journal(self, journal: Journal) -> None:
        """Be told of every repository creation, push and manifest DELETE before it is
        committed, and of its outcome after (see :mod:`ocireg.registry.journal`): to write a
        record of a change in the same step as the change, so that no crash loses it."""
        for root in self.registries.roots():
            root.journals.append(journal)

    def on_removal(self, listener: RemovalListener) -> None:
        """Be told of every manifest DELETE with the reference it named and the manifest it
        removed (called on the request path, after storage changed)."""
        for root in self.registries.roots():
            root.removal_listeners.append(listener)

    def on_refusal(self, listener: RefusalListener) -> None:
        """Be told when a manifest check (lint, for one) refuses a push, with the manifest's
        digest and bytes; the refusal still goes to the client."""
        for root in self.registries.roots():
            root.refusal_listeners.append(listener)

    def serve_misses(self, on_demand: OnDemand) -> None:
        """Be asked for manifests, blobs and referrers that a pull does not find here (and
        for every tag pulled): one extension may do it."""
        if self.hooks.on_demand is not None:
            raise ValueError(f"extension {self.enabled.name}: another extension serves misses")
        self.hooks.on_demand = on_demand

    def on_scanned(self, listener: ScanListener) -> None:
        """Be told when a vulnerability scan of an image finishes (CVE scanning, in a
        background thread), whichever extension was set up first."""
        self.hooks.scan_listeners.append(listener)

    def add_middleware(self, middleware: Middleware) -> None:
        """Wrap the whole app (outside connexion, inside the request log)."""
        self.hooks.middleware.append(middleware)

    def watch_requests(self, middleware: Middleware) -> None:
        """Wrap the whole app outside authentication, rate limits and timeouts (inside the
        request log): for middleware that must see every request and every answer, challenges
        and 429s included. It must pass both through unchanged."""
        self.hooks.watchers.append(middleware)


class RouteDispatcher:
    """Sends the extensions' routes (exact paths first, then prefixes) to their apps and
    everything else on."""

    def __init__(
        self,
        app: ASGIApp,
        routes: dict[str, Route],
        state: AppState,
        prefixes: dict[str, Route] | None = None,
    ) -> None:
        self.app = app
        self.routes = routes
        self.state = state
        self.prefixes = prefixes or {}

    def _route(self, path: str) -> Route | None:
        route = self.routes.get(path)
        if route is not None or not self.prefixes:
            return route
        for prefix, candidate in self.prefixes.items():  # a handful at most
            if path == prefix or path.startswith(prefix + "/"):
                return candidate
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        route = self._route(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        if self.state.guard is not None:
            try:
                await self.state.guard.authorize(scope, route.rule, {})
            except RegistryError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await route.app(scope, receive, send)
