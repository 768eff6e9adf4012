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
from openapi_core.validation.response.exceptions import InvalidHeader
from werkzeug.datastructures import Headers, ImmutableMultiDict

from ocireg.names import repository_of

# Values whose form the distribution spec leaves to the registry. The schema pins ocireg's own
# (a session id of 32 hex digits), but another registry's form is no departure: the spec asks
# only that `Location` leads to the upload session (§Pushing blobs: "MUST contain a UUID",
# format unsaid) and does not name `Docker-Upload-UUID` at all (docker's header, informative).
OPAQUE_HEADERS = frozenset({"location", "docker-upload-uuid"})


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
    opaque: bool = False  # about a value the spec leaves opaque: reported as left out, no more

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}: {self.problem}"


def _problem(error: Exception) -> str:
    cause = error.__cause__ or error
    detail = "; ".join(str(e.message) for e in getattr(cause, "schema_errors", ())) or str(cause)
    if isinstance(error, InvalidHeader):
        return f"header {error.name}: {detail}"
    return detail


def _is_opaque(error: Exception) -> bool:
    return isinstance(error, InvalidHeader) and error.name.lower() in OPAQUE_HEADERS


def deviations(response: httpx.Response) -> list[Deviation]:
    """What is wrong with ``response`` by the schema; [] when it matches or is not described.

    Departures in values the spec leaves opaque are marked ``opaque``: ocireg's own tests may
    hold ocireg to its schema there, but another registry is not wrong to differ."""
    request = _Request(response.request)
    try:
        errors = list(published_spec().iter_response_errors(request, _Response(response)))
    except PathError:
        return []  # not an API path (a token realm, a redirect target elsewhere)
    method, path = response.request.method, response.request.url.path
    return [
        Deviation(method, path, response.status_code, _problem(error), _is_opaque(error))
        for error in errors
        if not isinstance(error, PathError)
    ]
