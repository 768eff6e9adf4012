"""``http.ratelimit`` as zot reads it: a request rate per client for all requests (``rate``)
and per method (``methods``), both applying; over it, 429 ``TOOMANYREQUESTS``.

Each client address has a token bucket per limit, refilled at the rate per second and holding
at most one second's worth (zot's tollbooth does the same). Buckets live in each worker
process, so the configured rate is shared out evenly among ``http.workers``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from ocireg.defaults import empty_list
from ocireg.errors import ErrorCode, RegistryError, error_response

_PRUNE_EVERY = 1024
_OPEN = frozenset({"/livez", "/readyz", "/startupz"})


class MethodRate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(pattern=r"^[A-Za-z]+$")
    rate: float = Field(gt=0, description="Requests per second per client.")


class RateLimitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float | None = Field(None, gt=0, description="Requests per second per client.")
    methods: list[MethodRate] = Field(default_factory=empty_list)


class Buckets:
    """Token buckets by key, all with one rate."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(rate, 1.0)
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._calls = 0

    def take(self, key: str) -> float:
        """0 when a request may go now, else the seconds until one may."""
        now = self._clock()
        tokens, when = self._state.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - when) * self.rate)
        self._prune(now)
        if tokens >= 1:
            self._state[key] = (tokens - 1, now)
            return 0.0
        self._state[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget clients whose bucket has filled up again (they would start full anyway)."""
        self._calls += 1
        if self._calls % _PRUNE_EVERY:
            return
        full = self.capacity / self.rate
        self._state = {k: v for k, v in self._state.items() if now - v[1] < full}


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, config: RateLimitConfig, workers: int = 1) -> None:
        self.app = app
        self.overall = Buckets(config.rate / workers) if config.rate else None
        self.by_method = {m.method.upper(): Buckets(m.rate / workers) for m in config.methods}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in _OPEN:
            client = scope.get("client")
            key = client[0] if client else ""
            for bucket in (self.overall, self.by_method.get(scope["method"])):
                wait = bucket.take(key) if bucket is not None else 0.0
                if wait > 0:
                    await _too_many(wait)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _too_many(wait: float) -> ASGIApp:
    error = RegistryError(
        ErrorCode.TOOMANYREQUESTS,
        {"retryAfter": math.ceil(wait)},
        headers={"Retry-After": str(math.ceil(wait))},
    )
    return error_response(error)
