"""Running one GraphQL query: the limits first, then the query, then its JSON.

Every query is checked against ``extensions.search.limits`` (:mod:`.limits`) and then runs whole,
off the event loop (:mod:`.runners`), in a search process of its own or in a thread.

A query still running after ``queryTimeout`` stops at its next image (:meth:`Search.step`) and
answers an error for the fields it had not finished.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError
from strawberry.types import ExecutionContext

from ocireg.logs import event

from .limits import LimitExceeded, check, parse_and_validate
from .schema import QUERIES_KEPT, Search
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


class Executor:
    """Answers queries, synchronously, wherever it is called from (a thread, a search process)."""

    def __init__(self, schema: strawberry.Schema, limits: SearchLimits) -> None:
        self.schema = schema
        self.limits = limits
        # valid documents by query text (the same few queries come again and again)
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()

    def _parsed(self, query: str) -> DocumentNode | list[GraphQLError]:
        document = self._documents.get(query)
        if document is not None:
            self._documents.move_to_end(query)
            return document
        parsed = parse_and_validate(self.schema._schema, query, self.limits)
        if not isinstance(parsed, list):
            self._documents[query] = parsed
            if len(self._documents) > QUERIES_KEPT:
                self._documents.popitem(last=False)
        return parsed

    def answer(
        self, query: str, variables: dict[str, Any] | None, operation: str | None, search: Search
    ) -> bytes:
        """The GraphQL response document for one query (``data`` and maybe ``errors``), as
        JSON: encoding a large answer takes long too, so it is done here as well."""
        return json.dumps(self._result(query, variables, operation, search)).encode()

    def _result(
        self, query: str, variables: dict[str, Any] | None, operation: str | None, search: Search
    ) -> dict[str, Any]:
        parsed = self._parsed(query)
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
