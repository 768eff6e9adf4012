"""Authentication for every request, before routing: the identity goes into the scope, and
wrong credentials are answered 401 here, whatever the path (as zot does).

zot's web UI marks its requests with ``X-ZOT-API-CLIENT: zot-ui``; a 401 to such a request
carries no ``WWW-Authenticate`` challenge (zot's rule), or the browser would open its own
password dialog over the UI's login page. The 401 is otherwise unchanged (``UNAUTHORIZED``
with the OCI error body). It is done here, around everything that can answer 401 (this
middleware, the access rules of spec operations and extension routes, handlers, token mode),
so no place that makes a challenge can forget it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocireg.auth.guard import UI_CLIENT, UI_CLIENT_HEADER, Guard
from ocireg.auth.identity import SCOPE_KEY
from ocireg.errors import RegistryError, error_response

# Probes answer without credentials: orchestrators do not have any.
_OPEN = frozenset({"/livez", "/readyz", "/startupz"})


class AuthMiddleware:
    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and from_ui(scope):
            send = _without_challenge(send)
        if scope["type"] == "http" and scope["path"] not in _OPEN:
            try:
                scope[SCOPE_KEY] = await self.guard.identify(
                    scope["headers"], client_certificate(scope)
                )
            except RegistryError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def from_ui(scope: Scope) -> bool:
    """Whether zot's web UI sent the request (zot compares the value exactly)."""
    return any(name == UI_CLIENT_HEADER and value == UI_CLIENT for name, value in scope["headers"])


def _without_challenge(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 401:
            headers = [
                (k, v) for k, v in message.get("headers", []) if k.lower() != b"www-authenticate"
            ]
            message = {**message, "headers": headers}
        await send(message)

    return sending


def client_certificate(scope: Mapping[str, Any]) -> str | None:
    """The verified client certificate (PEM) of the request's connection, from the ASGI TLS
    extension (:mod:`ocireg.tls` fills it in); None on plain HTTP or when the client sent
    none."""
    tls = scope.get("extensions", {}).get("tls")
    chain = tls.get("client_cert_chain") if tls else None
    return str(chain[0]) if chain else None
