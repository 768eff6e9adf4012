"""`_oci` extension discovery, generated from the extensions that are enabled.

Each HTTP extension is one entry: its namespace as ``name`` (what zot's clients look for), its
definition document as ``url`` (served by the ``specs`` extension under ``/v2/_ocireg/``), and the
endpoints its OpenAPI fragments declare.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from starlette.responses import Response

from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.runtime import Active
from ocireg.extensions.specs import concrete_path, is_repository_level
from ocireg.handlers.base import app_state, registry, repo
from ocireg.operations import current_request

DOCUMENTS_PATH = "/v2/_ocireg/ext/specs/"


def _base_url() -> str:
    external = app_state().config.http.externalUrl
    if external:
        return external.rstrip("/")
    return str(current_request().base_url).rstrip("/")


def _entry(active: Active, base: str, paths: list[str]) -> dict[str, Any]:
    extension = active.enabled.extension
    document = PurePosixPath(extension.definition or "").name
    return {
        "name": extension.namespace,
        "url": f"{base}{DOCUMENTS_PATH}{document}",
        "description": extension.description,
        "endpoints": paths,
    }


def _listing(entries: list[dict[str, Any]]) -> Response:
    body = json.dumps({"extensions": entries}, separators=(",", ":")).encode()
    return Response(body, media_type="application/json")


async def discover() -> Response:
    base = _base_url()
    entries = [
        _entry(active, base, list(active.endpoints))
        for active in app_state().extensions.values()
        if active.endpoints
    ]
    return _listing(entries)


async def discover_repository(name: str) -> Response:
    name = repo(name)
    if registry(name).index(name) is None:
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
    base = _base_url()
    entries = []
    for active in app_state().extensions.values():
        paths = [concrete_path(p, name) for p in active.endpoints if is_repository_level(p)]
        if paths:
            entries.append(_entry(active, base, paths))
    return _listing(entries)
