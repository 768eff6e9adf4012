"""The sender process: delivers the outbox, so that the registry's own processes spend no CPU
on deliveries (a push costs one outbox write, nothing more).

Each registry worker process starts one (``python -m ocireg.ext.events.process``) and writes
one JSON line on its stdin (the settings, the outbox file, the lock file, the log settings);
it keeps the pipe open. Of those started, the one holding ``events-sender.lock`` (a ``flock``)
delivers; the others wait for the lock, so one process delivers at a time, which keeps each
repository's events in order. A sender ends when its stdin does (its registry process stopped
or died), after the delivery it is in; the lock then goes to a waiting one.

It runs at a lower CPU priority (``NICENESS``), and delivers at the lowest (nice
``pace.IDLE_NICE``) while its backlog is young (see :mod:`.pace`): under load, pushes get the
CPU first and events catch up after. The deliveries run on an event loop in a thread of their
own, one thread per pace (the threads that thread starts, which run the outbox's SQLite
writes, inherit its priority). The main thread keeps the process's nice value: it looks every
``CHECK_SECONDS`` whether the pace should change (so a starved delivery thread cannot keep
itself starved), and then ends the delivery thread after the delivery it is in and starts one
at the other pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .pace import CHECK_SECONDS, Pace, enter, measure, wanted

if TYPE_CHECKING:
    from .sender import Sender

NICENESS = 10
IDLE_SECONDS = 0.1  # a sender with nothing to do looks again this often
LOCK_POLL_SECONDS = 0.25

log = logging.getLogger("ocireg.events")


def start_line(settings: Any, outbox: Path, lock: Path, level: str, output: str | None) -> bytes:
    start = {
        "settings": settings.model_dump(mode="json"),
        "outbox": str(outbox),
        "lock": str(lock),
        "level": level,
        "output": output,
    }
    return json.dumps(start).encode() + b"\n"


def _watch_stdin(closed: threading.Event) -> None:
    """Read stdin to its end (the registry process keeps it open while it lives)."""
    for _ in sys.stdin.buffer:
        pass
    closed.set()


def _take_lock(path: Path, closed: threading.Event) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if closed.wait(LOCK_POLL_SECONDS):
                os.close(fd)
                return None


class Deliveries:
    """The sender at one pace, on an event loop in a thread of its own (started by the main
    thread, whose nice value it inherits unless the pace is idle)."""

    def __init__(self, sender: Sender, pace: Pace) -> None:
        self.sender = sender
        self.pace = pace
        self.error: BaseException | None = None
        self._guard = threading.Lock()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._main, name=f"events-{pace.value}")
        self.thread.start()

    def _main(self) -> None:
        try:
            enter(self.pace)
            asyncio.run(self._serve())
        except BaseException as exc:  # the main thread raises it again (see ``end``)
            self.error = exc

    async def _serve(self) -> None:
        stop = asyncio.Event()
        with self._guard:
            self._loop, self._stop = asyncio.get_running_loop(), stop
            if self._stopping:
                stop.set()
        try:
            await self.sender.run(stop, IDLE_SECONDS)
        finally:
            await self.sender.close()

    def end(self) -> None:
        """Stop after the delivery in progress, and wait for it."""
        with self._guard:
            self._stopping = True
            loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop has ended already
                loop.call_soon_threadsafe(stop.set)
        self.thread.join()
        if self.error is not None:
            raise self.error


def _next_pace(sender: Sender, deliveries: Deliveries, closed: threading.Event) -> Pace | None:
    """Wait until another pace is wanted (it), or stdin ends or the deliveries fail (None)."""
    from ocireg.logs import event as log_event

    pace = deliveries.pace
    while not closed.wait(CHECK_SECONDS) and deliveries.thread.is_alive():
        lag, share = measure(sender.outbox, sender.targets, time.time())
        following = wanted(pace, lag, share)
        if following is not pace:
            log_event(log, logging.INFO, "events sender pace", pace=following.value,
                      lag=lag, share=round(share, 3))  # fmt: skip
            return following
    return None


def deliver(start: dict[str, Any], closed: threading.Event) -> None:
    from .sender import Sender
    from .settings import EventsSettings
    from .sinkset import targets
    from .store import Outbox

    fd = _take_lock(Path(start["lock"]), closed)
    if fd is None:
        return
    settings = EventsSettings.model_validate(start["settings"])
    outbox = Outbox(Path(start["outbox"]))
    sender = Sender(outbox, targets(settings.sinks), settings.source)
    try:
        asyncio.run(sender.forget_unconfigured())
        pace: Pace | None = Pace.IDLE
        while pace is not None:
            deliveries = Deliveries(sender, pace)
            pace = _next_pace(sender, deliveries, closed)
            deliveries.end()
    finally:
        outbox.close()
        os.close(fd)


def main() -> None:
    os.nice(NICENESS)
    start = json.loads(sys.stdin.buffer.readline())
    from ocireg.logs import configure_logging

    configure_logging(start["level"], start["output"])
    closed = threading.Event()
    threading.Thread(target=_watch_stdin, args=(closed,), daemon=True).start()
    try:
        deliver(start, closed)
    except Exception:
        log.exception("the events sender process failed")
        raise


if __name__ == "__main__":
    main()
