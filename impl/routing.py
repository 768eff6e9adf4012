"""How connexion is set up to route the spec cheaply (measured in bench/: most of a request's
cost was connexion's per-request machinery, not the registry).

* :func:`routed_spec` hands connexion each path's shared parameters inside its operations;
* :class:`SpecMiddleware` keeps connexion's ``/openapi.json`` server off the API's path;
* :func:`middlewares` is connexion's stack with that and our request validation
  (:class:`ocireg.validation.OCIRequestValidationMiddleware`);
* handlers are called through :mod:`ocireg.operations`;
* connexion checks a spec against the OpenAPI schema once per process (:func:`check_spec`),
  and a server only on its first start on a root (:func:`remember_checks_in`).

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
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import connexion.json_schema
import connexion.spec
import jsonschema._keywords
import jsonschema.validators
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
# the tests' apps. The check depends on the spec's content alone (and on the checker: the
# files of connexion and jsonschema), so a content found valid once in this process (or in
# the parent it was forked from) is not checked again, nor one that a server found valid
# before and marked in a directory given to remember_checks_in.
_VALIDATED: set[str] = set()
_check_against_schema = OpenAPISpecification._validate_spec
_remembered_in: tuple[Path, ...] = ()


def remember_checks_in(*directories: Path) -> None:
    """From now on, take a file named by a spec's fingerprint in any of ``directories`` as the
    check's result, and leave one in each that lacks it once the spec is found valid (no
    directories: this process only). ``ocireg serve`` gives one in the storage root (a
    restart, in a new container too) and one in the user's cache (a new root)."""
    global _remembered_in
    _remembered_in = directories


@functools.cache
def _checker() -> str:
    """What the check's result depends on besides the spec: the files of connexion and
    jsonschema that do it, by path, size and modification time, so that upgrading either
    checks again. (Asking importlib.metadata for their versions costs 20-50 ms.)"""
    files = [
        Path(connexion.spec.__file__),
        Path(connexion.json_schema.__file__),
        Path(connexion.spec.__file__).parent / "resources/schemas/v3.0/schema.json",
        Path(jsonschema.validators.__file__),
        Path(jsonschema._keywords.__file__),
    ]
    stats = ((path, path.stat()) for path in files)
    return "\n".join(f"{path} {stat.st_size} {stat.st_mtime_ns}" for path, stat in stats)


def _fingerprint(spec: dict[str, Any]) -> str:
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(f"{_checker()}\n{text}".encode()).hexdigest()


def _mark(directory: Path, fingerprint: str) -> None:
    """Best effort: a directory that cannot take the mark only means checking again."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / f".{fingerprint}.{os.getpid()}"
        partial.write_text("valid OpenAPI 3 document\n")
        partial.replace(directory / fingerprint)  # never a half-written mark
    except OSError:
        pass


def _validate_once(cls: type[OpenAPISpecification], spec: dict[str, Any]) -> None:
    fingerprint = _fingerprint(spec)
    if fingerprint in _VALIDATED:
        return
    marked = [each for each in _remembered_in if (each / fingerprint).is_file()]
    if not marked:
        _check_against_schema(spec)
    for each in _remembered_in:
        if each not in marked:
            _mark(each, fingerprint)
    _VALIDATED.add(fingerprint)


OpenAPISpecification._validate_spec = classmethod(_validate_once)
