"""The audit log (``log.audit``): one JSON line per successful write, with who did it.

zot writes one line per successful POST, PUT, PATCH and DELETE (``api/session.go``) with
``clientIP``, ``subject``, ``action``, ``object`` and ``status``; we keep those names and add
the repository and the digest the response names. Lines are appended with one ``write`` on a
descriptor opened with ``O_APPEND``, so several worker processes share one file without
tearing lines. Credentials never appear: the line holds the user name, not the request headers.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocireg.auth.identity import identity_of
from ocireg.names import repository_of

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def write(self, line: dict[str, Any]) -> None:
        if self._fd is None or self._pid != os.getpid():  # opened anew in each worker
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._pid = os.getpid()
        os.write(self._fd, json.dumps(line, separators=(",", ":")).encode() + b"\n")


class AuditMiddleware:
    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        answer: dict[str, Any] = {}

        async def noting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"docker-content-digest":
                        answer["digest"] = value.decode("latin-1")
            await send(message)

        await self.app(scope, receive, noting_send)
        status = answer.get("status", 500)
        if 200 <= status < 300:
            self.audit.write(_line(scope, status, answer.get("digest")))


def _line(scope: Scope, status: int, digest: str | None) -> dict[str, Any]:
    client = scope.get("client")
    path = scope.get("path", "")
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "info",
        "msg": "HTTP API Audit",
        "clientIP": client[0] if client else None,
        "subject": identity_of(scope).user or "",
        "action": scope["method"],
        "object": path,
        "status": status,
        "repo": repository_of(path),
        "digest": digest,
    }
