"""Connection-level limits that uvicorn lacks, in the HTTP protocol every connection runs:

- ``http.readHeaderTimeout``: from a connection's opening, or from the first byte after a
  keep-alive pause, until a request's headers are complete (Go's ``ReadHeaderTimeout``).
  uvicorn times nothing before a connection's first response, so a client that connects and
  sends nothing, or sends its headers a byte at a time (slowloris), was kept forever. Past
  the timeout the connection closes: silently when no request had started, else after a 408.
- ``http.maxConnectionsPerClient``: open connections per client address. One more is
  answered 429 ``TOOMANYREQUESTS`` at once and closed, before any request is read, so a
  client holding many connections costs the others nothing. IPv6 clients count by /64 (one
  host's usual share); an IPv4-mapped address counts as its IPv4 address.

Both apply in each worker process on its own: the open-file limit the cap protects is per
process, and the kernel hands connections to whichever worker accepts first, so a cap shared
out among workers would refuse a client that one worker happens to hold more of.

The protocol also gives plain-TCP requests the ASGI zero-copy send extension (``zerocopy.py``).

The idle keep-alive timeout is uvicorn's (``timeout_keep_alive``, set in ``server.py``), and a
stalled request body is timed in ``timeouts.py``, where the app waits for it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ocireg.zerocopy import EXTENSION, ZeroCopySend, offered

log = logging.getLogger("ocireg.connections")

_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


def _too_many(limit: int) -> bytes:
    body = json.dumps(
        {
            "errors": [
                {
                    "code": "TOOMANYREQUESTS",
                    "message": "too many open connections from this client",
                    "detail": {"limit": limit, "reason": "http.maxConnectionsPerClient"},
                }
            ]
        }
    ).encode()
    head = (
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def client_key(peer: Any) -> str:
    """Who a connection counts against: its IP address, or an IPv6 address's /64."""
    if not isinstance(peer, tuple) or not peer:
        return ""  # not an IP socket: one shared key
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return str(peer[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class ConnectionGuard:
    """The limits, and the open connections per client of one worker process. Pickled into
    each worker with the protocol (empty, at start), so each worker counts its own."""

    header_timeout: float | None
    per_client: int | None
    open: Counter[str] = field(default_factory=Counter)
    warned: set[str] = field(default_factory=set)

    def admit(self, key: str) -> bool:
        if self.per_client is not None and self.open[key] >= self.per_client:
            if key not in self.warned:  # once while the client stays at its cap, not per refusal
                self.warned.add(key)
                log.warning(
                    "refusing connections from %s: %d open, http.maxConnectionsPerClient",
                    key,
                    self.open[key],
                )
            return False
        self.open[key] += 1
        return True

    def release(self, key: str) -> None:
        self.open[key] -= 1
        if self.open[key] <= 0:
            del self.open[key]
            self.warned.discard(key)
        elif self.per_client is not None and self.open[key] < self.per_client:
            self.warned.discard(key)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header timeout, a per-client connection cap and,
    on plain TCP, zero-copy sends. uvicorn makes one per connection; :func:`protocol_factory`
    gives it the guard."""

    def __init__(self, *args: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard
        self._client_key: str | None = None  # set once admitted: released when it closes
        self._header_timer: asyncio.TimerHandle | None = None
        self._request_started = False
        # the zero-copy sends of requests not answered yet (a pipelined one may be queued)
        self._zero_copy: list[ZeroCopySend] = []
        self._socket_fd: int | None = None  # set on plain TCP: zero-copy sends are offered
        # uvicorn starts each request's task with self.app: the wrapper gives the app the
        # zero-copy send from inside the task, so no task (an eager one, a pipelined one
        # started later) can reach the app before it has it
        self._inner_app = self.app
        self.app = self._app_with_zero_copy

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        socket = transport.get_extra_info("socket")
        if self.scheme == "http" and socket is not None:  # TLS: the kernel cannot encrypt
            self._socket_fd = socket.fileno()
        key = client_key(transport.get_extra_info("peername"))
        if not self._guard.admit(key):
            assert self._guard.per_client is not None
            transport.write(_too_many(self._guard.per_client))
            transport.close()
            return
        self._client_key = key
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._lose_zero_copy()
        if self._client_key is not None:
            self._guard.release(self._client_key)
            self._client_key = None
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        # The connection goes to the refusing protocol (ocireg.nowebsocket), which closes it;
        # this protocol's connection_lost is then never called: free the client's slot now,
        # and end a zero-copy response still being sent (a pipelined upgrade): it must not
        # send on a descriptor the close frees, nor wait for a socket no one watches.
        self._cancel_header_timer()
        if self._client_key is not None:
            self._guard.release(self._client_key)
            self._client_key = None
        self._lose_zero_copy()
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        # Bytes between requests start the next request's header clock. This also times a
        # body sent after its answer (the app did not read it): the next headers never come.
        if self.cycle is None or self.cycle.response_complete:
            self._request_started = True
            if self._header_timer is None:
                self._arm_header_timer()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._socket_fd is not None:
            self.scope["extensions"] = {EXTENSION: {}}

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        self._request_started = False
        super().on_headers_complete()

    async def _app_with_zero_copy(self, scope: Any, receive: Any, send: Any) -> None:
        # ``send`` is the request's cycle's (a bound method): the zero-copy send handles
        # zero-copy messages and passes the rest on to it
        cycle = getattr(send, "__self__", None)
        if cycle is not None and self._socket_fd is not None and offered(scope):
            sender = ZeroCopySend(cycle, self.transport, self._socket_fd)
            self._zero_copy = [s for s in self._zero_copy if not s.finished] + [sender]
            send = sender
        await self._inner_app(scope, receive, send)

    def _lose_zero_copy(self) -> None:
        # every response still sending, not only uvicorn's current cycle (which is a queued
        # pipelined request's when one came in behind the response being sent)
        pending = [sender for sender in self._zero_copy if not sender.finished]
        self._zero_copy = []
        for sender in pending:
            sender.connection_lost()
        if pending:
            self.flow.resume_writing()  # a send waiting for the socket to drain stops waiting

    def _arm_header_timer(self) -> None:
        if self._guard.header_timeout:
            self._header_timer = self.loop.call_later(
                self._guard.header_timeout, self._header_timed_out
            )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._request_started:
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


def protocol_factory(
    guard: ConnectionGuard, protocol: type[GuardedHttpToolsProtocol] = GuardedHttpToolsProtocol
) -> partial[GuardedHttpToolsProtocol]:
    """uvicorn's ``http=``: a class with the guard bound. A partial of a module-level class
    pickles by reference, so it reaches each worker process (uvicorn spawns them)."""
    return partial(protocol, guard=guard)
