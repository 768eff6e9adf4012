"""The ASGI middleware that watches each request and the start of its answer. It passes both
through untouched (it never reads a body) and judges the exchange once the answer is sent, so
a client waits for nothing; a fault in a check is logged and never reaches the client."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .book import Book
from .checks import CHECKS
from .exchange import Exchange

log = logging.getLogger("ocireg.clientreport")

REPORT_PATH = "/v2/_ocireg/clients/report"  # reading the report is not traffic to judge


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names; a header sent several times (Go clients send one ``Accept`` line per
    media type) is one value, joined with commas as RFC 9110 section 5.3 allows."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


class ClientReportMiddleware:
    def __init__(self, app: ASGIApp, book: Book) -> None:
        self.app = app
        self.book = book

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == REPORT_PATH:
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        answer: list[Message] = []

        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.append(message)
            await send(message)

        await self.app(scope, receive, watching_send)
        if answer:
            try:
                self._judge(scope, answer[0], started)
            except Exception:  # a bug here must not cost the client its answer
                log.exception("client report: a check failed")

    def _judge(self, scope: Scope, start: Message, started: float) -> None:
        headers = _headers(scope.get("headers", []))
        exchange = Exchange(
            method=scope.get("method", ""),
            path=scope.get("path", ""),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            status=start["status"],
            answer=_headers(list(start.get("headers", []))),
            started=started,
        )
        client = self.book.client(headers.get("user-agent", ""))
        client.requests += 1
        for rule, check in CHECKS.items():
            if check(exchange, client.memory):
                client.depart(rule, exchange.example())
