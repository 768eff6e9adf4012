"""Group commit: the writes that concurrent requests want made, made together in a thread.

A push's intent is written before its commit, and the push waits for it. Handing each write to
the event loop's executor cost a thread hop per push (the executor's queue, a future chained to
the loop, the worker thread woken, and a transaction of its own), which was most of the CPU an
events sink added to a push. Here one writer thread takes every write asked for while it was
busy and makes them in one go (``write``, one transaction), then wakes each waiting loop once
for the lot: under a burst the requests wait in its queue together instead of each paying for
its own hop and transaction. What a loop asks for in one iteration is handed to the thread at
the end of that iteration, in one go: one wake of the thread, and one group.

When the thread is idle, though, a small group is cheaper written where it was asked for: a
writer given ``try_write`` first tries that on the loop, at the hand-over, and the thread gets
the group only when the try would wait (SQLite's write lock held by another process, or by the
thread itself), the group is large, or a recent inline write stalled the loop on a slow disk
(see ``_inline``). On a registry taking a burst of pushes
that is most groups (88 % in ``bench/events.py``'s), and pushes with two sinks went from 523 to
544 per second on disk (``bench/RESULTS.md``, stop 20).

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
import time
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("ocireg.events")

Item = TypeVar("Item")
Result = TypeVar("Result")
# (the future to resolve, its result, or the exception it fails with)
Outcome = tuple["asyncio.Future[Result]", "Result | None", "BaseException | None"]

_WAKE = object()  # asks for a ``write`` even with nothing queued (see ``wake``)
_STOP = object()  # ends the thread (see ``close``)

# A group is at most this many items, and stops growing at this many bytes (``size``): the
# outbox's lock is held for the group's whole transaction, and calls still made on the event
# loop (a repository's creation, a manifest's deletion, a lint refusal's event) wait for it.
GROUP_ITEMS = 64
GROUP_BYTES = 512 * 1024
# A group of at most this many bytes (``size``) may be written on the loop (see ``_inline``):
# its JSON is made there too, which for a manifest of up to 4 MiB would stall the loop.
INLINE_BYTES = 64 * 1024
# An inline write that took longer than this (seconds) stalled every request of the loop: the
# disk is slow just now (its writeback saturated by large uploads, say, or a checkpoint
# copying the WAL), so the groups of the next ``INLINE_PAUSE`` seconds go to the thread, where
# a slow write delays only the pushes that wait for it. A usual inline write takes ~0.1 ms.
INLINE_STALL = 0.02
INLINE_PAUSE = 5.0


class GroupWriter(Generic[Item, Result]):
    """Calls ``write(items)`` in a thread of its own with the items submitted while it was
    busy (at most ``GROUP_ITEMS``, up to about ``GROUP_BYTES`` of ``size``); ``write`` returns
    one result per item, in order (it handles its own failures: an exception it raises fails
    every item of that group). A result whose request went (its future cancelled, its loop
    closed) is given to ``abandon``, in a thread, so that what it holds is let go."""

    def __init__(
        self,
        write: Callable[[list[Item]], list[Result]],
        name: str,
        abandon: Callable[[Result], None] | None = None,
        size: Callable[[Item], int] | None = None,
        try_write: Callable[[list[Item]], list[Result] | None] | None = None,
    ) -> None:
        self._write = write
        self._name = name
        self._abandon = abandon
        self._size = size
        self._try_write = try_write
        # per loop, the items it handed to the thread whose results it has not taken yet (see
        # ``_inline``); a loop that closed is forgotten with what it gathered
        self._outstanding: dict[asyncio.AbstractEventLoop, int] = {}
        self._outstanding_lock = threading.Lock()
        self._inline_paused_until = 0.0  # time.monotonic() until which nothing is inline
        self._pid = -1
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # what each loop submitted during its current iteration, handed over at its end
        self._gathered: dict[
            asyncio.AbstractEventLoop, list[tuple[Item, asyncio.Future[Result]]]
        ] = {}
        # taken to start the thread and to put on its queue: an item is never put on the
        # queue of a thread that has ended (see ``_serve``)
        self._start_guard = threading.Lock()

    def submit(self, item: Item) -> asyncio.Future[Result]:
        """Queue ``item``; the future (of the running loop) is done once it is written.

        The items a loop submits in one iteration go to the thread together, once that
        iteration is over: one wake of the thread for them all (a wake is a futex call, and
        on a busy host often a context switch), and one group, so one transaction."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        gathered = self._gathered.get(loop)
        if gathered is None:
            self._forget_closed_loops()
            gathered = self._gathered[loop] = []
            loop.call_soon(self._hand_over, loop)
        gathered.append((item, future))
        return future

    def _forget_closed_loops(self) -> None:
        """Drop what loops that closed before their hand-over gathered: their requests went
        with them, and it would keep each such loop alive (its futures hold it, so a weak
        mapping would not let it go). Once a loop iteration, and the loops are few."""
        for loop in [each for each in tuple(self._gathered) if each.is_closed()]:
            self._gathered.pop(loop, None)
        with self._outstanding_lock:
            for loop in [each for each in tuple(self._outstanding) if each.is_closed()]:
                del self._outstanding[loop]

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        gathered = self._gathered.pop(loop, None)
        if not gathered:  # (none: a wake handed them over already)
            return
        if self._inline(loop, gathered):
            return
        self._count_outstanding(loop, len(gathered))
        try:
            self._put(gathered)
        except BaseException as exc:  # no thread to write them: their requests fail, not hang
            self._count_outstanding(loop, -len(gathered))
            log.error("%s: could not hand %d write(s) over: %r", self._name, len(gathered), exc)
            for _, future in gathered:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):  # (an interrupt or exit goes on)
                raise

    def _inline(
        self, loop: asyncio.AbstractEventLoop, gathered: list[tuple[Item, asyncio.Future[Result]]]
    ) -> bool:
        """Write ``gathered`` here, on the loop, with ``try_write``, when the thread has
        nothing of theirs to hand back and the group is at most ``INLINE_BYTES``, which
        saves the hand-over to the thread (its wake, the GIL going back and forth, the loop
        woken again for the results). Whether it was written: ``try_write`` returns None
        when it would have to wait (a lock held elsewhere), and raises on a failure, which
        the thread then meets and handles its own way.

        Only while the thread has no results outstanding for this loop: pushes resume in the
        order their intents were written, and so commit in that order, which keeps each
        repository's events in the order of its commits; a group written here while an
        earlier one is on its way back from the thread would overtake it."""
        if self._try_write is None:
            return False
        if self._count_outstanding(loop, 0):
            return False
        if sum(self._bytes(entry) for entry in gathered) > INLINE_BYTES:
            return False
        started = time.monotonic()
        if started < self._inline_paused_until:
            return False
        try:
            results = self._try_write([item for item, _ in gathered])
        except Exception:  # the thread writes them, and meets the failure its own way
            log.debug("%s: an inline write failed; handed to the thread", self._name, exc_info=True)
            return False
        finally:
            self._note_stall(time.monotonic() - started)
        if results is None:
            return False
        self._resolve(
            [(future, result, None) for (_, future), result in zip(gathered, results, strict=True)]
        )
        return True

    def _note_stall(self, took: float) -> None:
        """After an inline write that stalled the loop, send the next ones to the thread for a
        while (see ``INLINE_STALL``)."""
        if took <= INLINE_STALL:
            return
        self._inline_paused_until = time.monotonic() + INLINE_PAUSE
        log.warning(
            "%s: a write on the event loop took %.0f ms; writing in a thread for the next %.0f s",
            self._name,
            took * 1000,
            INLINE_PAUSE,
        )

    def wake(self) -> None:
        """Have ``write`` called soon with no item (for work it picks up itself, such as
        confirmations waiting), after any items queued meanwhile; from any thread. Raises
        when the writer's thread cannot be started: the caller's work is then not done."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on a loop: nothing of its own was gathered
            pass
        else:  # on a loop: what it submitted goes first
            self._hand_over(loop)
        self._put(_WAKE)

    def close(self, timeout: float = 10) -> None:
        """End the thread once what is queued is written (a later submit starts another)."""
        with self._start_guard:
            thread, self._thread = self._thread, None
            if thread is None or self._pid != os.getpid():
                return
            self._queue.put(_STOP)
            self._pid = -1
        thread.join(timeout)

    def _put(self, entry: object) -> None:
        with self._start_guard:
            if self._pid != os.getpid():  # a fresh queue: a forked parent's is not ours
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._serve, args=(self._queue,), name=self._name, daemon=True
                )
                self._thread.start()
                self._pid = os.getpid()
            self._queue.put(entry)

    def _serve(self, own: queue.SimpleQueue[object]) -> None:
        pending: list[object] = []  # taken from the queue, beyond the last group's bounds
        taken: list[object] = []
        stopping = False
        try:
            while not (stopping and not pending):
                taken = self._group(own, pending)
                stopping = stopping or any(entry is _STOP for entry in taken)
                waiting = [entry for entry in taken if isinstance(entry, tuple)]
                if waiting:
                    self._run(waiting)
                if any(entry is _WAKE for entry in taken):  # woken as well: a call of its own
                    self._run([])
        except BaseException as exc:  # never a silent death: every later push would wait
            log.exception("%s: the writer thread failed; the next write starts another", self._name)
            self._fail_all(own, taken + pending, exc)  # (a done future is left)

    def _group(self, own: queue.SimpleQueue[object], pending: list[object]) -> list[object]:
        """The next group: the oldest of what was taken before (``pending``) and what is
        queued now, within the bounds; the rest stays in ``pending`` for the next."""
        if not pending:
            _take(pending, own.get())
        while True:
            try:
                _take(pending, own.get_nowait())
            except queue.Empty:
                break
        count, bytes_taken = 0, 0
        while count < len(pending) and count < GROUP_ITEMS and bytes_taken < GROUP_BYTES:
            bytes_taken += self._bytes(pending[count])
            count += 1
        taken = pending[:count]
        del pending[:count]
        return taken

    def _bytes(self, entry: object) -> int:
        if self._size is None or not isinstance(entry, tuple):
            return 0
        return self._size(entry[0])

    def _fail_all(
        self, own: queue.SimpleQueue[object], pending: list[object], exc: BaseException
    ) -> None:
        """Fail what this ended thread took or had queued (a wake among it still gets its
        call); a later ``_put`` starts another."""
        with self._start_guard:
            if self._queue is own:
                self._pid, self._thread = -1, None
        left = list(pending)
        while True:
            try:
                _take(left, own.get_nowait())
            except queue.Empty:
                break
        if any(entry is _WAKE for entry in left):  # its caller waits for that call (confirmations)
            self._run([])
        waiting = [entry for entry in left if isinstance(entry, tuple)]
        self._hand_back([(future, None, exc) for _, future in waiting])

    def _run(self, waiting: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        outcomes: list[Outcome[Result]]
        try:
            results = self._write([item for item, _ in waiting])
            outcomes = [
                (future, result, None) for (_, future), result in zip(waiting, results, strict=True)
            ]
        except Exception as exc:  # every item of the group fails with it
            log.exception("%s: a group write failed", self._name)
            outcomes = [(future, None, exc) for _, future in waiting]
        self._hand_back(outcomes)

    def _hand_back(self, outcomes: list[Outcome[Result]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome[Result]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, done in by_loop.items():
            try:
                loop.call_soon_threadsafe(self._resolve_handed_back, loop, done)
            except RuntimeError:  # that loop has closed: its requests are gone
                self._count_outstanding(loop, -len(done))
                self._let_go(done, None)

    def _count_outstanding(self, loop: asyncio.AbstractEventLoop, change: int) -> int:
        """Add ``change`` to the count of ``loop``'s results outstanding; the count now (a
        loop of a forked worker is its own, starting from none)."""
        with self._outstanding_lock:
            count = max(0, self._outstanding.get(loop, 0) + change)
            if count:
                self._outstanding[loop] = count
            else:
                self._outstanding.pop(loop, None)
            return count

    def _resolve_handed_back(
        self, loop: asyncio.AbstractEventLoop, done: list[Outcome[Result]]
    ) -> None:
        self._count_outstanding(loop, -len(done))
        self._resolve(done)

    def _resolve(self, done: list[Outcome[Result]]) -> None:
        gone: list[Outcome[Result]] = []
        for outcome in done:
            future, result, error = outcome
            if future.cancelled():
                gone.append(outcome)
            elif future.done():  # already resolved (by the group of a thread that then failed)
                continue
            elif error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)  # type: ignore[arg-type]
        if gone:
            self._let_go(gone, asyncio.get_running_loop())

    def _let_go(self, gone: list[Outcome[Result]], loop: asyncio.AbstractEventLoop | None) -> None:
        """Give the results of requests that went to ``abandon``: in the loop's executor, or,
        with no loop to use, in the calling thread (the writer's)."""
        abandon = self._abandon
        results = [result for _, result, error in gone if error is None and result is not None]
        if abandon is None or not results:
            return

        def abandon_all() -> None:
            for result in results:
                try:
                    abandon(result)
                except Exception:
                    log.exception("%s: could not let go of an abandoned write", self._name)

        if loop is not None:
            try:
                loop.run_in_executor(None, abandon_all)
                return
            except RuntimeError:  # the executor is shut (stopping)
                pass
        abandon_all()


def _take(entries: list[object], entry: object) -> None:
    """Add a queue's entry to ``entries``: the items a loop handed over together one by one."""
    if isinstance(entry, list):
        entries.extend(entry)
    else:
        entries.append(entry)
