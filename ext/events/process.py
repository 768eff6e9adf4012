"""The sender process: delivers the outbox, so that the registry's own processes spend no CPU
on deliveries (a push costs one outbox write, nothing more).

Each registry worker process starts one (``python -m ocireg.ext.events.process``) and writes
one JSON line on its stdin (the settings, the outbox file, the lock file, the log settings);
it keeps the pipe open. Of those started, the one holding ``events-sender.lock`` (a ``flock``)
delivers; the others wait for the lock, so one process delivers at a time, which keeps each
repository's events in order. A sender ends when its stdin does (its registry process stopped
or died), after the round it is in; the lock then goes to a waiting one.

It runs at a lower CPU priority (``NICENESS``): under load, pushes get the CPU first and
events catch up after.
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
from pathlib import Path
from typing import Any

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


def _watch_stdin(loop: asyncio.AbstractEventLoop, closed: asyncio.Event) -> None:
    """Read stdin to its end (the registry process keeps it open while it lives)."""
    for _ in sys.stdin.buffer:
        pass
    loop.call_soon_threadsafe(closed.set)


async def _take_lock(path: Path, closed: asyncio.Event) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    while not closed.is_set():
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), LOCK_POLL_SECONDS)
    os.close(fd)
    return None


async def serve(start: dict[str, Any]) -> None:
    from . import EventsSettings
    from .sender import Sender
    from .sinkset import targets
    from .store import Outbox

    settings = EventsSettings.model_validate(start["settings"])
    closed = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_watch_stdin, args=(loop, closed), daemon=True).start()
    fd = await _take_lock(Path(start["lock"]), closed)
    if fd is None:
        return
    outbox = Outbox(Path(start["outbox"]))
    sender = Sender(outbox, targets(settings.sinks), settings.source)
    try:
        await sender.forget_unconfigured()
        await sender.run(closed, IDLE_SECONDS)
    finally:
        await sender.close()
        outbox.close()
        os.close(fd)


def main() -> None:
    os.nice(NICENESS)
    start = json.loads(sys.stdin.buffer.readline())
    from ocireg.logs import configure_logging

    configure_logging(start["level"], start["output"])
    try:
        asyncio.run(serve(start))
    except Exception:
        log.exception("the events sender process failed")
        raise


if __name__ == "__main__":
    main()
