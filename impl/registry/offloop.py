"""Storage work that is a network request, kept off the event loop.

On a local disk a repository's index or a manifest is read in microseconds, and a thread hop
would cost more than the read: such work runs where it is asked for. On S3 each is a request,
which a slow or silent S3 can hold for its read timeouts (seconds, each tried four times):
made on the event loop, it would hold every other request of the process with it. There it
runs on a worker thread, at most ``STORAGE_THREADS`` at once per event loop, counted apart
from anyio's default 40 (which the catalog, the meta DB's work, settling and the rest share):
while S3 stalls, requests wait for it, not that work.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")

STORAGE_THREADS = 64
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def storage_limiter() -> anyio.CapacityLimiter:
    """The running loop's limiter of worker threads waiting on storage requests."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(STORAGE_THREADS)
    return limiter


async def run_storage_work(remote: bool, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``: on a storage worker thread when ``remote`` (storage is asked over the
    network), else here, on the loop."""
    if remote:
        return await anyio.to_thread.run_sync(call, *args, limiter=storage_limiter())
    return call(*args)
