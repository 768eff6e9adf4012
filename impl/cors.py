"""``http.allowOrigin``: CORS headers on every response and answered preflights, as zot does.

zot sets ``Access-Control-Allow-Origin`` to ``allowOrigin`` on every response and answers an
``OPTIONS`` preflight with 204 before authentication (a browser sends no credentials on one),
naming the path's methods and the headers its UI sends. Without ``allowOrigin`` ocireg sends
no CORS headers at all (zot then sends ``*``): a browser page from elsewhere reads nothing.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocireg.errorhandlers import AllowedMethods

ALLOWED_HEADERS = "Authorization,content-type,X-ZOT-API-CLIENT"


class CorsMiddleware:
    def __init__(
        self, app: ASGIApp, origin: str, allowed: AllowedMethods, credentials: bool
    ) -> None:
        self.app = app
        self.origin = origin.encode()
        self.allowed = allowed
        self.credentials = credentials

    def _headers(self, path: str) -> list[tuple[bytes, bytes]]:
        methods = self.allowed.for_path(path) or "GET, HEAD"
        headers = [
            (b"access-control-allow-origin", self.origin),
            (b"access-control-allow-methods", f"{methods}, OPTIONS".encode()),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
        ]
        if self.credentials:  # zot: only when Basic credentials are checked
            headers.append((b"access-control-allow-credentials", b"true"))
        if self.origin != b"*":
            headers.append((b"vary", b"Origin"))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = self._headers(scope["path"])
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in headers if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_cors)
