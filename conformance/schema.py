"""Validate each response the suite receives against the published ``spec/openapi.yaml``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from werkzeug.datastructures import Headers, ImmutableMultiDict

from ocireg.names import repository_of


def _json_media_types(document: dict[str, Any]) -> set[str]:
    """Every ``+json`` media type the spec names, so openapi-core parses those bodies as JSON."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "content" and isinstance(value, dict):
                    found.update(k for k in value if str(k).endswith("+json"))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return found


@cache
def published_spec() -> OpenAPI:
    text = resources.files("ocireg.spec").joinpath("openapi.yaml").read_text()
    document = yaml.safe_load(text)
    parsers = {media_type: json.loads for media_type in _json_media_types(document)}
    return OpenAPI.from_dict(document, config=Config(extra_media_type_deserializers=parsers))


def _template_path(path: str) -> str:
    """Repository names hold ``/``, which OpenAPI path templates cannot match: encode them."""
    name = repository_of(path)
    if name is None:
        return path
    return f"/v2/{name.replace('/', '%2F')}{path[len('/v2/') + len(name) :]}"


class _Request:
    """An httpx request as openapi-core reads one."""

    def __init__(self, request: httpx.Request) -> None:
        url = urlsplit(str(request.url))
        self.host_url = f"{url.scheme}://{url.netloc}"
        self.path = _template_path(url.path)
        self.method = request.method.lower()
        self.body: bytes | None = None
        self.content_type = request.headers.get("Content-Type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query, keep_blank_values=True)),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("Content-Type", "")
        self.headers = Headers(list(response.headers.multi_items()))
        self.data = response.content


@dataclass(frozen=True)
class Deviation:
    """A response that departs from the published schema."""

    method: str
    path: str
    status: int
    problem: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}: {self.problem}"


def deviations(response: httpx.Response) -> list[Deviation]:
    """What is wrong with ``response`` by the schema; [] when it matches or is not described."""
    request = _Request(response.request)
    try:
        errors = list(published_spec().iter_response_errors(request, _Response(response)))
    except PathError:
        return []  # not an API path (a token realm, a redirect target elsewhere)
    found = []
    for error in errors:
        if isinstance(error, PathError):
            continue
        cause = error.__cause__ or error
        detail = "; ".join(str(e.message) for e in getattr(cause, "schema_errors", ())) or str(
            cause
        )
        path = response.request.url.path
        found.append(Deviation(response.request.method, path, response.status_code, detail))
    return found
