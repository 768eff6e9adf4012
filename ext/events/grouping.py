"""Group commit: the writes that concurrent requests want made, made together in a thread.

A push's intent is written before its commit, and the push waits for it. Handing each write to
the event loop's executor cost a thread hop per push (the executor's queue, a future chained to
the loop, the worker thread woken, and a transaction of its own), which was most of the CPU an
events sink added to a push. Here one writer thread takes every write asked for while it was
busy and makes them in one go (``write``, one transaction), then wakes each waiting loop once
for the lot: under a burst the requests wait in its queue together instead of each paying for
its own hop and transaction.

The thread is started on first use, in the process that uses it (a worker forked after the
writer was made gets its own), and is a daemon: a process that ends with writes queued ends
with their requests, whose changes were not committed either.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("ocireg.events")

Item = TypeVar("Item")
Result = TypeVar("Result")
# (the future to resolve, its result, or the exception it fails with)
Outcome = tuple["asyncio.Future[Result]", "Result | None", "BaseException | None"]

_WAKE = object()  # asks for a ``write`` even with nothing queued (see ``wake``)


class GroupWriter(Generic[Item, Result]):
    """Calls ``write(items)`` in a thread of its own with every item submitted while it was
    busy; ``write`` returns one result per item, in order (it handles its own failures: an
    exception it raises fails every item of that group)."""

    def __init__(self, write: Callable[[list[Item]], list[Result]], name: str) -> None:
        self._write = write
        self._name = name
        self._pid = -1
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._start_guard = threading.Lock()

    def submit(self, item: Item) -> asyncio.Future[Result]:
        """Queue ``item``; the future (of the running loop) is done once it is written."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._running().put((item, future))
        return future

    def wake(self) -> None:
        """Have ``write`` called soon with no item (for work it picks up itself, such as
        confirmations waiting), after any items queued meanwhile; from any thread."""
        self._running().put(_WAKE)

    def _running(self) -> queue.SimpleQueue[object]:
        if self._pid != os.getpid():
            with self._start_guard:
                if self._pid != os.getpid():  # a fresh queue: a forked parent's is not ours
                    self._queue = queue.SimpleQueue()
                    thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                    thread.start()
                    self._pid = os.getpid()
        return self._queue

    def _serve(self) -> None:
        own = self._queue
        while True:
            taken = [own.get()]
            while True:
                try:
                    taken.append(own.get_nowait())
                except queue.Empty:
                    break
            waiting = [entry for entry in taken if entry is not _WAKE]
            if waiting:
                self._run(waiting)  # type: ignore[arg-type]
            if len(waiting) < len(taken):  # woken as well: a call of its own, after
                self._run([])

    def _run(self, waiting: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        outcomes: list[Outcome[Result]]
        try:
            results = self._write([item for item, _ in waiting])
            outcomes = [
                (future, result, None) for (_, future), result in zip(waiting, results, strict=True)
            ]
        except BaseException as exc:  # every item of the group fails with it
            log.exception("%s: a group write failed", self._name)
            outcomes = [(future, None, exc) for _, future in waiting]
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome[Result]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, done in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, done)
            except RuntimeError:  # that loop has closed: its requests are gone
                continue


def _resolve(done: list[Outcome[Result]]) -> None:
    for future, result, error in done:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]
