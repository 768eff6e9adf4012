"""One JSON line per request: method, path, status, bytes in and out, duration, repository,
the authenticated user (null when anonymous), and for a refused request its OCI error code and
reason (``"error":"MANIFEST_INVALID","reason":"..."``).

The code and reason are read from the error body the client receives, so every refusal has them
whichever layer answered it (the handlers, authentication, rate limits, timeouts): a client such
as podman that prints only the status leaves the operator this line to learn why.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocireg.auth.identity import identity_of
from ocireg.logs import event
from ocireg.names import repository_of
from ocireg.zerocopy import EXTENSION as ZERO_COPY
from ocireg.zerocopy import SENT as ZERO_COPY_SENT

log = logging.getLogger("ocireg.access")

_ERROR_BODY_LIMIT = 64 * 1024  # an error body is a few hundred bytes; past this, not read


class _ErrorBody:
    """The body of an error response (status >= 400, JSON), kept to read its first error."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= _ERROR_BODY_LIMIT:
            self.chunks.append(chunk)

    def refusal(self) -> dict[str, Any]:
        """``{"error": code, "reason": why}`` from ``{"errors":[{"code","message","detail"}]}``;
        {} for a body that is not one (too large, not JSON, another shape)."""
        if self.size > _ERROR_BODY_LIMIT:
            return {}
        try:
            first = json.loads(b"".join(self.chunks))["errors"][0]
            code = first["code"]
        except (ValueError, TypeError, KeyError, IndexError):
            return {}
        detail = first.get("detail")
        reason = detail.get("reason") if isinstance(detail, dict) else None
        return {"error": code, "reason": reason if reason is not None else first.get("message")}


def _is_json(message: Message) -> bool:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bool(value.split(b";")[0].strip().lower().endswith(b"json"))
    return False


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        facts: dict[str, Any] = {"status": 500, "bytes_in": 0, "bytes_out": 0}
        error: _ErrorBody | None = None

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                facts["bytes_in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal error
            if message["type"] == "http.response.start":
                facts["status"] = message["status"]
                if message["status"] >= 400 and _is_json(message):
                    error = _ErrorBody()
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                facts["bytes_out"] += len(body)
                if error is not None:
                    error.add(body)
            elif message["type"] == ZERO_COPY:  # sent from a file (an error body never is)
                # what the connection says its socket took (some of a part cut short); else
                # all of a part whose send returned, none of one that raised
                try:
                    await send(message)
                except BaseException:
                    facts["bytes_out"] += message.get(ZERO_COPY_SENT, 0)
                    raise
                facts["bytes_out"] += message.get(ZERO_COPY_SENT, message.get("count") or 0)
                return
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
                **(error.refusal() if error is not None else {}),
            )
