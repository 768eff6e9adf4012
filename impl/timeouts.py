"""``http.readTimeout`` and ``http.writeTimeout``: how long one request may take, as close to
Go's ``http.Server`` (zot's) as an ASGI app can get under uvicorn, which has no such settings.

- ``readTimeout``: from the request's arrival until its whole body has been received. A client
  that sends its body slower gets 408 (or, once the answer has started, a closed connection).
- ``writeTimeout``: from the request's arrival until the whole response has been sent (Go
  counts from the end of the headers; so does this, uvicorn having read them). Past it, a
  request still being handled gets 503; a response already under way is cut off.

Both apply per request, not per connection, and only when configured (zot defaults both to
60 s, which would cut off large blob uploads and downloads; ocireg has no default).

- ``bodyStallTimeout`` (ocireg's key): the longest the app waits for the next part of a request
  body. The clock runs only while the app waits in ``receive()`` for a body not yet all in
  (uvicorn reads from the socket only then), so a body that keeps moving is never cut however
  long it takes, and a slow disk is not the client's fault. A stalled body gets 408 as above.

Connection-level limits (slow headers, idle connections, connections per client) are in
``connections.py`` and ``server.py``.
"""

from __future__ import annotations

import math

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocireg.logs import Expected


class ResponseCutOff(TimeoutError, Expected):
    """A response under way cut off by ``http.writeTimeout``: raised so that uvicorn closes
    the connection (an ASGI app has no other way), and logged as one warning line."""


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class TimeoutMiddleware:
    def __init__(
        self, app: ASGIApp, read: float | None, write: float | None, stall: float | None = None
    ) -> None:
        self.app = app
        self.read = read or math.inf
        self.write = write or math.inf
        self.stall = stall or math.inf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        body_pending = _has_body(scope)
        now = anyio.current_time()
        reading = anyio.CancelScope(deadline=now + self.read if body_pending else math.inf)
        writing = anyio.CancelScope(deadline=now + self.write)
        stalling = anyio.CancelScope()  # armed only while waiting for more of the body

        async def timed_receive() -> Message:
            nonlocal body_pending
            if body_pending and not started:
                stalling.deadline = anyio.current_time() + self.stall
            try:
                message = await receive()
            finally:
                stalling.deadline = math.inf
            if not message.get("more_body", False):
                body_pending = False
                reading.deadline = math.inf  # the whole body is in
            return message

        async def timed_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                reading.deadline = math.inf
            await send(message)

        with writing, reading, stalling:
            await self.app(scope, timed_receive, timed_send)
        timed_out = reading.cancelled_caught or stalling.cancelled_caught
        if not (timed_out or writing.cancelled_caught):
            return
        if started:  # uvicorn closes the connection
            raise ResponseCutOff(
                f"response to {scope['method']} {scope['path']} cut off by http.writeTimeout "
                f"({self.write:g} s)"
            )
        status = 408 if timed_out else 503
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"connection", b"close"), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})
