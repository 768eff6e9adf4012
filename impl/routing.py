"""How connexion is set up to route the spec cheaply (measured in bench/: most of a request's
cost was connexion's per-request machinery, not the registry).

* :func:`routed_spec` hands connexion each path's shared parameters inside its operations;
* :class:`SpecMiddleware` keeps connexion's ``/openapi.json`` server off the API's path;
* :func:`middlewares` is connexion's stack with that and our request validation
  (:class:`ocireg.validation.OCIRequestValidationMiddleware`);
* handlers are called through :mod:`ocireg.operations`;
* connexion checks a spec against the OpenAPI schema once per process (:func:`check_spec`).

These lean on connexion 3.3's internals, which is why pyproject pins connexion below 3.4 (and
``.ci/run`` also tries connexion's newest release, see docs/dependencies.md):

* ``ConnexionMiddleware.default_middlewares``: the order and classes of its stack, which
  :func:`middlewares` copies with two classes replaced and ``SecurityMiddleware`` left out;
* ``SwaggerUIMiddleware``, subclassed: that it serves the spec from ``__call__`` and holds the
  next app as ``self.app``;
* that connexion appends a path's parameters to each operation's list in place, once per
  middleware (what :func:`routed_spec` avoids).

The integration tests pin the answers.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from connexion.middleware import ConnexionMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.spec import OpenAPISpecification, Specification
from starlette.types import Receive, Scope, Send

from ocireg.validation import OCIRequestValidationMiddleware

_METHODS = frozenset({"get", "head", "put", "post", "patch", "delete", "options", "trace"})


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
    """connexion's middleware stack, with our spec server and request validation, and
    without its security middleware: the spec's security schemes are enforced by
    :mod:`ocireg.auth` (zot's rules, OCI error bodies), not by connexion."""
    replaced = {
        SwaggerUIMiddleware: SpecMiddleware,
        RequestValidationMiddleware: OCIRequestValidationMiddleware,
    }
    stack = ConnexionMiddleware.default_middlewares
    return [replaced.get(m, m) for m in stack if m is not SecurityMiddleware]


def check_spec(spec: dict[str, Any]) -> None:
    """What ``add_api`` will do with ``spec``, done now: connexion's InvalidSpecification if
    it is not a valid OpenAPI 3 document. The server calls it before forking its workers,
    which then find the spec checked (below)."""
    Specification.from_dict(routed_spec(spec))


# connexion checks every spec it is given against the OpenAPI 3 schema (0.3-0.5 s for ours, in
# pure-Python jsonschema) each time an app is built: in every worker, and again for each of
# the tests' apps. The check depends on the spec's content alone, so a content found valid
# once in this process (or in the parent it was forked from) is not checked again.
_VALIDATED: set[str] = set()
_check_against_schema = OpenAPISpecification._validate_spec


def _fingerprint(spec: dict[str, Any]) -> str:
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _validate_once(cls: type[OpenAPISpecification], spec: dict[str, Any]) -> None:
    fingerprint = _fingerprint(spec)
    if fingerprint not in _VALIDATED:
        _check_against_schema(spec)
        _VALIDATED.add(fingerprint)


OpenAPISpecification._validate_spec = classmethod(_validate_once)
