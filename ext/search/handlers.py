"""GraphQL over HTTP: GET ``?query=`` (what zot's UI sends) and POST JSON (what zli sends).

A request that is not GraphQL (no query, a body that is not a JSON object) answers 400 in the
registry's error shape, whose entries carry ``message`` as GraphQL clients expect; a POST body
over 64 KiB answers 413 the same way (request validation, :mod:`ocireg.validation`). A query
over a limit answers 200 with a GraphQL error naming the limit (:mod:`.limits`). Queries run
off the event loop (:mod:`.runners`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ocireg import extensions, jsonparse
from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.runtime import SetupContext
from ocireg.handlers.base import identity
from ocireg.operations import current_request
from ocireg.scheduler import Priority, Task

from .runners import ProcessRunner, ThreadRunner
from .worker import Start

log = logging.getLogger("ocireg.search")


Runner = ThreadRunner | ProcessRunner


@dataclass(frozen=True)
class SearchState:
    runner: Runner


def setup(context: SetupContext) -> SearchState:
    cve = None
    if context.settings.cve is not None:
        from ..cve.service import start

        cve = start(context)
    limits = context.settings.limits
    meta = context.app.meta
    source = meta.reader_source()
    runner: Runner
    # the meta DB, or CVE's tables (in the meta DB's local file), live in this process's memory
    if source is None or (cve is not None and meta.path is None):
        runner = ThreadRunner(limits, meta, cve)
    else:
        guard = context.app.guard
        access = None if guard is None else guard.access
        level = logging.getLogger("ocireg.search").getEffectiveLevel()
        begin = Start(source, access, limits, level, cve is not None, tables=meta.path)
        runner = ProcessRunner(begin)
        context.scheduler.once(Task("search-process", runner.warm, Priority.LOW))
    context.scheduler.at_stop(runner.close)
    return SearchState(runner)


def _bad(reason: str) -> RegistryError:
    return RegistryError(ErrorCode.UNSUPPORTED, {"reason": reason}, status=400, message=reason)


async def _answer(query: str | None, variables: Any, operation: str | None) -> Response:
    if not query:
        raise _bad("a GraphQL query is required")
    if variables is not None and not isinstance(variables, dict):
        raise _bad("variables must be a JSON object")
    search: SearchState = extensions.state("search")
    body = await search.runner.answer(query, variables, operation, identity())
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
