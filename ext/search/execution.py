"""Running GraphQL queries without holding up the rest of the registry.

Every query is checked against ``extensions.search.limits`` (:mod:`.limits`) and then runs, whole,
in one of ``workers`` threads of this worker process; the event loop only waits for the answer.

Why a thread, and not resolvers that yield every few steps: the resolvers are plain functions
over the meta DB, and a step (one image summary of an image with 28,000 layers) can itself take
long; splitting them would touch every resolver and still leave those steps on the loop. The
meta DB serialises its calls on one lock (its SQLite connection is opened for use from any
thread), the facts cache has a lock of its own, and everything else a query touches is built
for that query alone, so a query needs nothing more to run in a thread. A thread running Python
holds the GIL for at most the switch interval (5 ms) before the loop gets it back, so manifest
GETs from other clients go on. One thread by default: measured with ten clients sending the
worst allowed query (``bench/hostile.py``), two threads doubled both the GET p99 (92 -> 244 ms)
and the peak memory (405 -> 701 MiB) of one, for searches that merely queue less.

A query still running after ``queryTimeout`` stops at its next image (:meth:`Search.step`) and
answers an error for the fields it had not finished; the thread is then free again.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from ocireg.logs import event

from .limits import LimitExceeded, check, parse_and_validate
from .schema import Search
from .settings import SearchLimits

log = logging.getLogger("ocireg.search")


class SearchSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """A client's mistake (a bad query, an unknown image, a limit) is logged without a
        traceback and below error level; only a failure of ours is an error."""
        for error in errors:
            original = error.original_error
            if original is None or isinstance(original, ValueError):
                event(log, logging.DEBUG, "search query error", error=error.message)
            else:
                log.error("search query failed: %s", error.message, exc_info=original)


def _refusal(error: GraphQLError) -> dict[str, Any]:
    return {"data": None, "errors": [error.formatted]}


class Runner:
    def __init__(self, schema: strawberry.Schema, limits: SearchLimits) -> None:
        self.schema = schema
        self.limits = limits
        self.pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="ocireg-search")

    async def answer(
        self, query: str, variables: dict[str, Any] | None, operation: str | None, search: Search
    ) -> bytes:
        """The GraphQL response document for one query (``data`` and maybe ``errors``), as
        JSON: encoding a large answer takes long too, so it is done in the thread as well."""
        run = contextvars.copy_context().run  # the request (who asks) goes to the thread too
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.pool, run, self._answer, query, variables, operation, search
        )

    def _answer(
        self, query: str, variables: dict[str, Any] | None, operation: str | None, search: Search
    ) -> bytes:
        return json.dumps(self._result(query, variables, operation, search)).encode()

    def _result(
        self, query: str, variables: dict[str, Any] | None, operation: str | None, search: Search
    ) -> dict[str, Any]:
        parsed = parse_and_validate(self.schema._schema, query, self.limits)
        if isinstance(parsed, list):
            return {"data": None, "errors": [error.formatted for error in parsed]}
        try:
            check(self.schema._schema, parsed, self.limits, variables, operation)
        except LimitExceeded as exc:
            event(log, logging.INFO, "search query refused", reason=str(exc))
            return _refusal(GraphQLError(str(exc), extensions={"limit": exc.limit}))
        search.deadline = time.monotonic() + self.limits.queryTimeout
        search.max_items = self.limits.maxResultItems
        result = self.schema.execute_sync(
            query, variable_values=variables, operation_name=operation, context_value=search
        )
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return body
