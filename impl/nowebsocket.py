"""The WebSocket protocol uvicorn hands an upgrade request to: none of ocireg's routes takes a
WebSocket, so every upgrade is refused with the 403 that uvicorn's own WebSocket protocol sent
when the app closed the connection unaccepted, and the websockets library (about 0.03 CPU s of
every start) is never imported."""

from __future__ import annotations

import asyncio
from email.utils import formatdate
from typing import Any, cast


class RefuseWebSocket(asyncio.Protocol):
    """Answers the upgrade request (handed over whole, as uvicorn re-serialises it) with 403
    and closes the connection."""

    def __init__(self, **_uvicorn_state: Any) -> None:  # config, server_state, app_state
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        date = formatdate(usegmt=True)
        self.transport.write(
            b"HTTP/1.1 403 Forbidden\r\n"
            + f"Date: {date}\r\n".encode()
            + b"Connection: close\r\nContent-Length: 0\r\n"
            + b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        )
        self.transport.close()
