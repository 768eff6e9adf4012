"""How connexion calls our handlers: once per request, with the path parameters, nothing more.

connexion's own operation (``AsyncOperation``) builds a decorator chain for every request:
``inspect.signature`` of the handler, a URI parser, argument coercion, a body read check and a
response conversion. Our handlers take only their path parameters (strings, already validated
by the request validation middleware against the spec), read anything else from the request
themselves and return starlette responses, so none of that is needed per request. The handler's
signature is read once, when the API is built.

connexion's decorator also read every request's body as a form when its Content-Type said
multipart or urlencoded, whatever the operation (a malformed one answered 400 even on
``GET /v2/``; a large one was spooled to disk). Operations with a request body only accept
their own media types (request validation answers 415 otherwise), so only body-less
operations notice: they now ignore the body, as they ignore any other.

The operation's ``x-ocireg-access`` rule is checked before the request is validated, by
:mod:`ocireg.validation` (see :mod:`ocireg.auth.access`).

The current request is kept in a context variable (:func:`current_request`) instead of
connexion's ``request`` proxy, which builds a new request object on every attribute access.

connexion 3.3's internals used here (pyproject pins connexion below 3.4 for them): the private
``AsyncApp._middleware_app.api_cls``, set to :class:`HandlerApi`; ``AsyncApi.make_operation``,
overridden; and the ``parameters`` and ``function`` of the operation object it is given.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from connexion.apps.asynchronous import AsyncApi
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Handler = Callable[..., Awaitable[Response]]

_request: ContextVar[Request] = ContextVar("ocireg.request")


def current_request() -> Request:
    """The request being handled (set for the duration of a handler call)."""
    return _request.get()


@contextmanager
def handling(request: Request) -> Iterator[None]:
    """Make ``request`` the current one while the block runs: for an extension's own routes
    outside the spec that call what handlers call (search's runners, ``readable``)."""
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


class HandlerOperation:
    """Calls one handler with the path parameters its signature names."""

    def __init__(self, fn: Handler, path_names: list[str]) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__qualname__}: handlers are coroutine functions")
        parameters = inspect.signature(fn).parameters
        unknown = [n for n, p in parameters.items() if n not in path_names and p.default is p.empty]
        if unknown:
            raise TypeError(f"{fn.__qualname__}: only path parameters are passed, not {unknown}")
        self.fn = fn
        self.path_names = [n for n in path_names if n in parameters]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with handling(Request(scope, receive)):
            path = scope["path_params"]
            response = await self.fn(**{n: path[n] for n in self.path_names})
            await response(scope, receive, send)


class HandlerApi(AsyncApi):  # type: ignore[misc]
    """connexion's async API with :class:`HandlerOperation` as its operations."""

    def make_operation(self, operation: Any) -> HandlerOperation:
        path_names = [p["name"] for p in operation.parameters if p["in"] == "path"]
        return HandlerOperation(operation.function, path_names)


def install(app: Any) -> None:
    """Make a connexion ``AsyncApp`` (before ``add_api``) route to :class:`HandlerOperation`."""
    app._middleware_app.api_cls = HandlerApi
