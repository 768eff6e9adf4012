"""The trust extension's rounds: the two-hourly sweep makes one task per repository, and
reads the repositories from the meta DB off the event loop (PostgreSQL: a request over the
network), since the scheduler takes a round's tasks there."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any, cast

from ocireg.ext.trust.running import Trust


def test_the_sweep_reads_the_repositories_off_the_event_loop() -> None:
    read_in: list[int] = []

    def repositories() -> list[str]:
        read_in.append(threading.get_ident())
        return ["a", "b/c"]

    evaluator = SimpleNamespace(meta=SimpleNamespace(repositories=repositories))
    trust = Trust(cast(Any, None), cast(Any, evaluator), cast(Any, None))

    async def run() -> tuple[list[str], int]:
        return [task.name async for task in trust.sweep()], threading.get_ident()

    names, loop = asyncio.run(run())
    assert names == ["trust: signatures of a", "trust: signatures of b/c"]
    assert read_in and loop not in read_in
