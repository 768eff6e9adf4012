"""`_oci` extension discovery, generated from the extensions that are enabled.

Each URL namespace is one entry, as zot lists its own (one ``_zot`` entry): the namespace as
``name`` (what zot's clients look for), a document as ``url`` (served by the ``specs``
extension under ``/v2/_ocireg/``: the extension's definition document, or for a namespace that
several extensions share an overview linking theirs; see :mod:`ocireg.extensions.namespaces`),
and the endpoints their OpenAPI fragments declare.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.namespaces import by_namespace, description, document_name
from ocireg.extensions.specs import concrete_path, is_repository_level
from ocireg.handlers.base import app_state, registry, repo
from ocireg.operations import current_request
from ocireg.state import Active

DOCUMENTS_PATH = "/v2/_ocireg/ext/specs/"


def _base_url() -> str:
    external = app_state().config.http.externalUrl
    if external:
        return external.rstrip("/")
    return str(current_request().base_url).rstrip("/")


def _entry(namespace: str, members: list[Active], base: str, paths: list[str]) -> dict[str, Any]:
    return {
        "name": namespace,
        "url": f"{base}{DOCUMENTS_PATH}{document_name(members)}",
        "description": description(namespace, members),
        "endpoints": paths,
    }


def _listing(entries: list[dict[str, Any]]) -> Response:
    body = json.dumps({"extensions": entries}, separators=(",", ":")).encode()
    return Response(body, media_type="application/json")


async def discover() -> Response:
    base = _base_url()
    groups = by_namespace(app_state().extensions.values())
    entries = [
        _entry(namespace, members, base, [path for m in members for path in m.endpoints])
        for namespace, members in groups.items()
    ]
    return _listing(entries)


async def discover_repository(name: str) -> Response:
    name = repo(name)
    reg = registry(name)
    if await reg.off_loop(reg.index, name) is None:
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
    base = _base_url()
    entries = []
    for namespace, members in by_namespace(app_state().extensions.values()).items():
        level = [m for m in members if any(map(is_repository_level, m.endpoints))]
        templates = [p for m in level for p in m.endpoints if is_repository_level(p)]
        paths = [concrete_path(template, name) for template in templates]
        if paths:
            entries.append(_entry(namespace, level, base, paths))
    return _listing(entries)
