"""Starting and watching this registry process's sender process (see :mod:`.process`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

from ocireg.logs import event

from .process import start_line

log = logging.getLogger("ocireg.events")

WATCH_SECONDS = 2.0


class Launcher:
    def __init__(self, settings: Any, outbox: Path, level: str, output: str | None) -> None:
        self.start = start_line(settings, outbox, outbox.with_name("events-sender.lock"), level,
                                output)  # fmt: skip
        self.process: asyncio.subprocess.Process | None = None

    async def ensure(self) -> bool:
        """Start the sender process unless it runs; whether one was started."""
        if self.process is not None and self.process.returncode is None:
            return False
        if self.process is not None:
            event(log, logging.ERROR, "events sender process ended; starting another",
                  returncode=self.process.returncode)  # fmt: skip
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ocireg.ext.events.process", stdin=asyncio.subprocess.PIPE
        )
        assert self.process.stdin is not None
        self.process.stdin.write(self.start)
        await self.process.stdin.drain()
        return True

    async def stop(self) -> None:
        """Close its stdin: it ends after the round it is in (at most a few seconds)."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
