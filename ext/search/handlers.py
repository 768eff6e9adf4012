"""GraphQL over HTTP: GET ``?query=`` (what zot's UI sends) and POST JSON (what zli sends).

A request that is not GraphQL (no query, a body that is not a JSON object) answers 400 in the
registry's error shape, whose entries carry ``message`` as GraphQL clients expect; a POST body
over 64 KiB answers 413 the same way (request validation, :mod:`ocireg.validation`). A query
over a limit answers 200 with a GraphQL error naming the limit (:mod:`.limits`). Queries run
off the event loop (:mod:`.execution`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ocireg import extensions, jsonparse
from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.runtime import SetupContext
from ocireg.handlers.base import identity, readable
from ocireg.logs import event
from ocireg.operations import current_request

from .execution import Runner, SearchSchema
from .facts import FactsCache
from .schema import Search, build_schema

log = logging.getLogger("ocireg.search")


@dataclass(frozen=True)
class SearchState:
    runner: Runner
    facts: FactsCache


def setup(context: SetupContext) -> SearchState:
    if context.settings.cve is not None:
        event(log, logging.WARNING, "extensions.search.cve: CVE scanning is not implemented "
              "yet; the CVE queries answer an error")  # fmt: skip
    runner = Runner(build_schema(SearchSchema), context.settings.limits)
    return SearchState(runner, FactsCache(context.app.meta))


def _bad(reason: str) -> RegistryError:
    return RegistryError(ErrorCode.UNSUPPORTED, {"reason": reason}, status=400, message=reason)


async def _answer(query: str | None, variables: Any, operation: str | None) -> Response:
    if not query:
        raise _bad("a GraphQL query is required")
    if variables is not None and not isinstance(variables, dict):
        raise _bad("variables must be a JSON object")
    search: SearchState = extensions.state("search")
    meta = extensions.app_state().meta
    context = Search(meta, search.facts, identity().user or "", readable)
    body = await search.runner.answer(query, variables, operation, context)
    return Response(body, media_type="application/json")


async def search_get() -> Response:
    params = current_request().query_params
    variables = params.get("variables")
    try:
        decoded = jsonparse.loads(variables) if variables else None
    except jsonparse.JSONError as exc:
        raise _bad(f"variables is not acceptable JSON: {exc}") from None
    return await _answer(params.get("query"), decoded, params.get("operationName"))


async def search_post() -> Response:
    # request validation has read at most 64 KiB and checked that it is JSON, not too deep
    try:
        payload = jsonparse.loads(await current_request().body())
    except jsonparse.JSONError as exc:
        raise _bad(f"the body is not acceptable JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise _bad("the body must be a JSON object")
    query, operation = payload.get("query"), payload.get("operationName")
    if not isinstance(query, str) or not (operation is None or isinstance(operation, str)):
        raise _bad("query (and operationName) must be strings")
    return await _answer(query, payload.get("variables"), operation)
