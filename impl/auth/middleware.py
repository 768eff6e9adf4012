"""Authentication for every request, before routing: the identity goes into the scope, and
wrong credentials are answered 401 here, whatever the path (as zot does)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ocireg.auth.guard import Guard
from ocireg.auth.identity import SCOPE_KEY
from ocireg.errors import RegistryError

# Probes answer without credentials: orchestrators do not have any.
_OPEN = frozenset({"/livez", "/readyz", "/startupz"})


class AuthMiddleware:
    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in _OPEN:
            try:
                scope[SCOPE_KEY] = await self.guard.identify(
                    scope["headers"], client_certificate(scope)
                )
            except RegistryError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def client_certificate(scope: Mapping[str, Any]) -> str | None:
    """The verified client certificate (PEM) of the request's connection, from the ASGI TLS
    extension (:mod:`ocireg.tls` fills it in); None on plain HTTP or when the client sent
    none."""
    tls = scope.get("extensions", {}).get("tls")
    chain = tls.get("client_cert_chain") if tls else None
    return str(chain[0]) if chain else None


def error_response(exc: RegistryError) -> Response:
    return Response(exc.body(), exc.http_status, headers=exc.headers, media_type="application/json")
