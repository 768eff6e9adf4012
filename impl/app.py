"""The ASGI application: connexion routes everything declared in the specs."""

from __future__ import annotations

import copy
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from connexion import AsyncApp
from connexion.middleware import ConnexionMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from starlette.types import ASGIApp, Receive, Scope, Send

from ocireg import errorhandlers, operations
from ocireg.config import Config
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.store import Registry
from ocireg.reqlog import RequestLogMiddleware
from ocireg.state import SCOPE_KEY, AppState
from ocireg.storage.driver import StorageDriver
from ocireg.storage.filesystem import FilesystemDriver
from ocireg.validation import OCIRequestValidationMiddleware, validator_map

SPEC_FILE = "openapi.yaml"
_METHODS = frozenset({"get", "head", "put", "post", "patch", "delete", "options", "trace"})


def spec_dir() -> Path:
    return Path(str(resources.files("ocireg.spec")))


def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((spec_dir() / SPEC_FILE).read_text())
    return spec


def routed_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with each path's shared parameters copied into its operations.

    connexion appends a path's parameters to the operation's own list *in place*, once for
    every middleware that builds the operation (six of them), so an operation that declares
    parameters of its own (manifest PUT, upload POST/PUT/PATCH, blob GET, tags, referrers)
    ends up validating ``name`` six times per request. With no path-level parameters left
    there is nothing to append; the operations and their order are otherwise the same (the
    spec served at /openapi.json shows this form).
    """
    routed = copy.deepcopy(spec)
    for item in routed["paths"].values():
        shared = item.pop("parameters", [])
        for method, operation in item.items():
            if method in _METHODS:
                operation["parameters"] = [*operation.get("parameters", []), *shared]
    return routed


class SpecMiddleware(SwaggerUIMiddleware):  # type: ignore[misc]
    """connexion's spec server (GET /openapi.json; the UI is off), minus its router for API
    calls: it routes every request through a starlette Router and Mount to find that none of
    them is /openapi.json. API paths go straight on, as connexion passes them (a copy of the
    scope)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v2/"):
            await self.app(dict(scope), receive, send)
            return
        await super().__call__(scope, receive, send)


def middlewares() -> list[Any]:
    """connexion's middleware stack, with our spec server and request validation."""
    replaced = {
        SwaggerUIMiddleware: SpecMiddleware,
        RequestValidationMiddleware: OCIRequestValidationMiddleware,
    }
    return [replaced.get(m, m) for m in ConnexionMiddleware.default_middlewares]


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


def build_registry(config: Config, driver: StorageDriver | None = None) -> Registry:
    if driver is None:
        root = config.resolved_root()
        driver = FilesystemDriver(root, fsync=config.storage.commit)
        locks = KeyedLocks(root / ".ocireg" / "locks")
    else:
        locks = KeyedLocks(None)
    docker = "docker2s2" in config.http.compat
    return Registry(driver, locks, docker_compat=docker, fsync=config.storage.commit)


# connexion warns "this operation accepts multiple content types" on every request to an
# operation whose body may have several media types (manifest PUT has eight), even when the
# request names its type: pure noise on stderr, and measurable cost per push.
logging.getLogger("connexion.operations.openapi3").setLevel(logging.ERROR)


def create_app(
    config: Config, driver: StorageDriver | None = None, *, validate_responses: bool = False
) -> ASGIApp:
    state = AppState(config, build_registry(config, driver), config.http.maxManifestSize)
    app = AsyncApp(__name__, specification_dir=spec_dir(), middlewares=middlewares())
    operations.install(app)
    spec = load_spec()
    app.add_api(
        routed_spec(spec),
        validator_map=validator_map(),
        validate_responses=validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui=False, spec_path="/openapi.json"),
    )
    errorhandlers.install(app, errorhandlers.AllowedMethods(spec["paths"]))
    state.ready = True
    return RequestLogMiddleware(StateMiddleware(app, state))
