"""The ASGI application: connexion routes everything declared in the specs."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connexion import AsyncApp
from connexion.options import SwaggerUIOptions
from starlette.types import ASGIApp, Receive, Scope, Send

from ocireg import errorhandlers, operations
from ocireg.audit import AuditLog, AuditMiddleware
from ocireg.auth.build import build_guard
from ocireg.auth.guard import Guard
from ocireg.auth.middleware import AuthMiddleware
from ocireg.background import (
    Lifespan,
    build_scheduler,
    schedule_cleanup,
    schedule_dedupe_conversion,
    schedule_gc,
    start_meta,
)
from ocireg.config import Config
from ocireg.configcheck import ConfigError
from ocireg.cors import CorsMiddleware
from ocireg.extensions.declaration import Extension
from ocireg.extensions.loading import Enabled, available, check_all, load_setup, resolve
from ocireg.extensions.runtime import Hooks, RouteDispatcher, SetupContext
from ocireg.extensions.specs import SpecError, core_spec, endpoints, merge
from ocireg.meta.backends import open_meta
from ocireg.notices import config_warnings
from ocireg.ratelimit import RateLimitMiddleware
from ocireg.registry.build import build_registry, meta_dir
from ocireg.reqlog import RequestLogMiddleware
from ocireg.routing import middlewares, routed_spec
from ocireg.scheduler import Scheduler
from ocireg.state import SCOPE_KEY, Active, AppState
from ocireg.storage.driver import StorageDriver
from ocireg.timeouts import TimeoutMiddleware
from ocireg.validation import validator_map

if TYPE_CHECKING:
    from ocireg.cluster.members import Cluster


def spec_dir() -> Path:
    return Path(str(resources.files("ocireg.spec")))


class StateMiddleware:
    """Outermost layer: hands the app state to every request. It also pre-creates the
    ``extensions`` dict, which connexion's router otherwise fills in a copy of the scope."""

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[SCOPE_KEY] = self.state
        scope.setdefault("extensions", {})
        await self.app(scope, receive, send)


# connexion warns "this operation accepts multiple content types" on every request to an
# operation whose body may have several media types (manifest PUT has eight), even when the
# request names its type: pure noise on stderr, and measurable cost per push.
logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)


log = logging.getLogger("ocireg.extensions")


def _start_extensions(state: AppState, enabled: list[Enabled]) -> Hooks:
    hooks = Hooks()
    for each in enabled:
        context = SetupContext(state, each, tuple(enabled), hooks)
        paths = tuple(endpoints(each.extension))
        state.extensions[each.name] = Active(each, load_setup(each)(context), paths)
    for root in state.registries.roots():
        root.manifest_checks = hooks.manifest_checks
        root.pull_checks = hooks.pull_checks
        root.on_demand = hooks.on_demand
    return hooks


def plan(
    config: Config, extensions: Iterable[Extension] = ()
) -> tuple[list[Enabled], dict[str, Any], list[str]]:
    """The enabled extensions, the merged spec and warnings, or a ConfigError that says why
    the registry cannot start; nothing is set up."""
    try:
        enabled, warnings = resolve(config.extensions, "configuration", available(extensions))
        check_all(config, "configuration", enabled)
        warnings = config_warnings(config, "configuration") + warnings
        return enabled, merge(core_spec(), [each.extension for each in enabled]), warnings
    except (SpecError, ValueError, TypeError) as exc:
        raise ConfigError([str(exc)]) from None


def _guarded(
    app: ASGIApp, config: Config, guard: Guard | None, allowed: errorhandlers.AllowedMethods
) -> ASGIApp:
    """Audit inside authentication (it logs who wrote), CORS outside it (a preflight carries
    no credentials), rate limits outside both (so guessing passwords is limited too), and the
    HTTP timeouts around everything."""
    http = config.http
    if config.log.audit:
        app = AuditMiddleware(app, AuditLog(config.log.audit))
    if guard is not None:
        app = AuthMiddleware(app, guard)
    if http.allowOrigin:
        basic = http.auth is not None and http.auth.passwords_configured()
        app = CorsMiddleware(app, http.allowOrigin, allowed, credentials=basic)
    if http.ratelimit is not None:
        app = RateLimitMiddleware(app, http.ratelimit, http.workers)
    if http.readTimeout or http.writeTimeout or http.bodyStallTimeout:
        app = TimeoutMiddleware(app, http.readTimeout, http.writeTimeout, http.bodyStallTimeout)
    return app


def _close_sessions_at_stop(guard: Guard | None, scheduler: Scheduler) -> None:
    sessions = guard.sessions if guard is not None else None
    if sessions is not None:

        async def close() -> None:
            sessions.close()

        scheduler.at_stop(close)


def create_app(
    config: Config,
    driver: StorageDriver | None = None,
    *,
    validate_responses: bool = False,
    extensions: Iterable[Extension] = (),
    notices: bool = True,
) -> ASGIApp:
    """The whole registry as one ASGI app. ``extensions`` adds extensions given in code to
    the built-in and installed ones; the configuration decides which of them run. ``notices``:
    log the configuration's warnings (``ocireg serve`` says them itself, once for all workers)."""
    enabled, spec, warnings = plan(config, extensions)
    membership = cluster_membership(config)
    for warning in warnings if notices else ():
        log.warning(warning)
    shared = meta_dir(config, driver)
    registries = build_registry(config, driver)
    scheduler = build_scheduler(config, shared / "scheduler" if shared else None)
    meta = start_meta(registries, scheduler, shared, open_meta(config, shared))
    gc = schedule_gc(config, registries, scheduler, meta)
    schedule_dedupe_conversion(config, registries, scheduler, shared)
    schedule_cleanup(registries, scheduler, shared)
    state = AppState(
        config, registries, config.http.maxManifestSize, scheduler=scheduler, gc=gc, meta=meta
    )
    state.guard = build_guard(config, meta)
    _close_sessions_at_stop(state.guard, scheduler)
    hooks = _start_extensions(state, enabled)
    app = AsyncApp(__name__, specification_dir=spec_dir(), middlewares=middlewares())
    operations.install(app)
    app.add_api(
        routed_spec(spec),
        validator_map=validator_map(),
        validate_responses=validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui=False, spec_path="/openapi.json"),
    )
    allowed = errorhandlers.AllowedMethods(spec["paths"])
    errorhandlers.install(app, allowed)
    asgi: ASGIApp = StateMiddleware(app, state)
    if hooks.routes or hooks.prefixes:
        asgi = RouteDispatcher(asgi, hooks.routes, state, hooks.prefixes)
    for middleware in hooks.middleware:
        asgi = middleware(asgi)
    asgi = _guarded(asgi, config, state.guard, allowed)
    for watcher in hooks.watchers:
        asgi = watcher(asgi)
    if config.cluster is not None and membership is not None:
        # only here: its GraphQL merging needs the search extension's libraries
        from ocireg.cluster.middleware import ClusterMiddleware

        https = config.http.tls is not None
        search = "search" in state.extensions
        roots = [config.storage, *(config.storage.subPaths or {}).values()]
        on_s3 = all(root.on_s3() for root in roots)
        asgi = ClusterMiddleware(
            asgi, membership, https, config.cluster.tls, search=search, shared=on_s3
        )
    state.ready = True
    return RequestLogMiddleware(Lifespan(asgi, scheduler))


def cluster_membership(config: Config) -> Cluster | None:
    """This instance's place in ``cluster``; refused when no member is this instance or the
    TLS files between members cannot be used. The cluster layer goes outside authentication:
    the member that answers checks the caller."""
    if config.cluster is None:
        return None
    from ocireg.cluster.forward import tls_context  # only for a cluster: see ocireg.sections
    from ocireg.cluster.members import identify

    try:
        tls_context(config.http.tls is not None, config.cluster.tls)
        return identify(config.cluster, config.http.address, config.http.port)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
