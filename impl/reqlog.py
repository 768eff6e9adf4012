"""One JSON line per request: method, path, status, bytes in and out, duration, repository,
and the authenticated user (null when anonymous)."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocireg.auth.identity import identity_of
from ocireg.logs import event
from ocireg.names import repository_of

log = logging.getLogger("ocireg.access")


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        facts: dict[str, Any] = {"status": 500, "bytes_in": 0, "bytes_out": 0}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                facts["bytes_in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                facts["status"] = message["status"]
            elif message["type"] == "http.response.body":
                facts["bytes_out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            path = scope.get("path", "")
            client = scope.get("client")
            event(
                log,
                logging.INFO,
                "request",
                method=scope.get("method"),
                path=path,
                status=facts["status"],
                bytes_in=facts["bytes_in"],
                bytes_out=facts["bytes_out"],
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                repo=repository_of(path),
                user=identity_of(scope).user,
                client=client[0] if client else None,
            )
