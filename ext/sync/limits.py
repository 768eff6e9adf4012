"""zot's request limits on one upstream: ``reqConcurrent`` (requests in flight per host) and
``reqPerSec`` (requests started per second per host).

They sit under the upstream client as an httpx transport, so every request counts: manifests,
blobs, listings, token fetches and redirects alike. A request holds its slot until its body is
read or closed, so a blob streaming for a minute is one request in flight for that minute. As in
zot (regclient), each host is limited on its own: an upstream's mirror URLs do not share a cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx


@dataclass
class HostLimits:
    """The limits, and where each host stands against them."""

    concurrent: int | None  # requests in flight per host; None: no cap
    per_second: float | None  # request starts per second per host; None: no cap
    _slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _next_start: dict[str, float] = field(default_factory=dict)

    async def acquire(self, host: str) -> None:
        """Wait for a slot of ``host``, then for its turn under the rate."""
        if self.concurrent is not None:
            slot = self._slots.setdefault(host, asyncio.Semaphore(self.concurrent))
            await slot.acquire()
        try:
            await self._pace(host)
        except BaseException:
            self.release(host)
            raise

    def release(self, host: str) -> None:
        if self.concurrent is not None:
            self._slots[host].release()

    async def _pace(self, host: str) -> None:
        # Starts are spaced evenly (a burst of one, as regclient's limiter): each request books
        # the next free start time, then waits for it.
        if self.per_second is None:
            return
        now = asyncio.get_running_loop().time()
        start = max(now, self._next_start.get(host, now))
        self._next_start[host] = start + 1 / self.per_second
        if start > now:
            await asyncio.sleep(start - now)


class _Released(httpx.AsyncByteStream):
    """A response body that gives its host's slot back when it is closed."""

    def __init__(self, inner: httpx.AsyncByteStream, limits: HostLimits, host: str) -> None:
        self._inner = inner
        self._limits = limits
        self._host = host
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if not self._released:
                self._released = True
                self._limits.release(self._host)


class LimitedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, limits: HostLimits) -> None:
        self._inner = inner
        self._limits = limits

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.netloc.decode("ascii")
        await self._limits.acquire(host)
        try:
            response = await self._inner.handle_async_request(request)
        except BaseException:
            self._limits.release(host)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Released(response.stream, self._limits, host),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
