"""Running one GraphQL query: the limits first, then the query, then its JSON.

Every query is checked against ``extensions.search.limits`` (:mod:`.limits`) and then runs whole,
off the event loop (:mod:`.runners`), in a search process of its own or in a thread.

A query still running after ``queryTimeout`` stops at its next image (:meth:`Search.step`) and
answers an error for the fields it had not finished.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from inspect import isawaitable
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError, execute
from strawberry.types import ExecutionContext

from ocireg.logs import event

from .limits import LimitExceeded, check, parse_and_validate
from .schema import Search
from .settings import SearchLimits

log = logging.getLogger("ocireg.search")

# Parsed documents kept, and the longest query text kept: a bound on what a client sending
# many different long queries can make the process hold (a document is about 100 times its text)
_REMEMBERED = 64
_REMEMBERED_LENGTH = 4096


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
        self._documents: OrderedDict[str, DocumentNode | list[GraphQLError]] = OrderedDict()
        self._lock = threading.Lock()  # thread runners answer from several threads

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
        # graphql-core runs the document parsed and validated above: strawberry's own
        # execute_sync would parse and validate the text again (a third of a short query)
        result = execute(
            self.schema._schema,
            parsed,
            variable_values=variables,
            operation_name=operation,
            context_value=search,
        )
        if isawaitable(result):  # no resolver of ours is async: a bug, not a client's doing
            raise TypeError("a search resolver returned an awaitable")
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            self.schema.process_errors(result.errors)
            body["errors"] = [error.formatted for error in result.errors]
        return body

    def _parsed(self, query: str) -> DocumentNode | list[GraphQLError]:
        """The document of ``query`` or its errors; a short text seen lately is not parsed
        and validated again (clients send the same few queries with other variables)."""
        if len(query) > _REMEMBERED_LENGTH:
            return parse_and_validate(self.schema._schema, query, self.limits)
        with self._lock:
            found = self._documents.get(query)
            if found is not None:
                self._documents.move_to_end(query)
                return found
        parsed = parse_and_validate(self.schema._schema, query, self.limits)
        with self._lock:
            self._documents[query] = parsed
            while len(self._documents) > _REMEMBERED:
                self._documents.popitem(last=False)
        return parsed
