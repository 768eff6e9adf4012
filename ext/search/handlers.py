"""GraphQL over HTTP: GET ``?query=`` (what zot's UI sends) and POST JSON (what zli sends)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import strawberry
from starlette.responses import Response

from ocireg import extensions
from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.runtime import SetupContext
from ocireg.handlers.base import identity, readable
from ocireg.logs import event
from ocireg.operations import current_request

from .facts import FactsCache
from .schema import Search, build_schema

log = logging.getLogger("ocireg.search")


@dataclass(frozen=True)
class SearchState:
    schema: strawberry.Schema
    facts: FactsCache


def setup(context: SetupContext) -> SearchState:
    if context.settings.cve is not None:
        event(log, logging.WARNING, "extensions.search.cve: CVE scanning is not implemented "
              "yet; the CVE queries answer an error")  # fmt: skip
    return SearchState(build_schema(), FactsCache(context.app.meta))


def _bad(reason: str) -> RegistryError:
    return RegistryError(ErrorCode.UNSUPPORTED, {"reason": reason}, status=400)


async def _answer(query: str | None, variables: Any, operation: str | None) -> Response:
    if not query:
        raise _bad("a GraphQL query is required")
    if variables is not None and not isinstance(variables, dict):
        raise _bad("variables must be a JSON object")
    search: SearchState = extensions.state("search")
    meta = extensions.app_state().meta
    result = await search.schema.execute(
        query,
        variable_values=variables,
        operation_name=operation,
        context_value=Search(meta, search.facts, identity().user or "", readable),
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    return Response(json.dumps(body), media_type="application/json")


async def search_get() -> Response:
    params = current_request().query_params
    variables = params.get("variables")
    try:
        decoded = json.loads(variables) if variables else None
    except ValueError:
        raise _bad("variables is not JSON") from None
    return await _answer(params.get("query"), decoded, params.get("operationName"))


async def search_post() -> Response:
    try:
        payload = json.loads(await current_request().body())
    except ValueError:
        raise _bad("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise _bad("the body must be a JSON object")
    query, operation = payload.get("query"), payload.get("operationName")
    if not isinstance(query, str) or not (operation is None or isinstance(operation, str)):
        raise _bad("query (and operationName) must be strings")
    return await _answer(query, payload.get("variables"), operation)
