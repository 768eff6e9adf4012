"""Where queries run, off the event loop: a search process, or a thread.

Why a process (:class:`ProcessRunner`): a query is Python, C calls that decode a manifest's
2 MB layer list, and the collector walking the objects it builds, all of which hold the
interpreter lock. In a thread of the worker process each such stretch is a stretch in which the
event loop serves nobody: beside ten clients sending the worst allowed query, other clients'
manifest GETs had a p99 of 100-200 ms (``bench/hostile_search.py``). A search process has its
own interpreter and heap, runs below the registry's CPU priority (:mod:`.worker`), and reads the
meta DB through its own SQLite connection, as every worker process already does.

Each worker process starts one search process soon after it starts, more (``limits.workers``
at most) as queries arrive at once, and keeps them. A process whose query runs past
``queryTimeout`` (plus a grace for the query to stop by itself at its next image) is killed,
as is one whose request is cancelled mid-query (the server stopping: a client that merely
goes away is noticed only when the answer is sent); one that dies is replaced on the next
query. A registry without a storage root has its meta DB in memory, which no other process
can read: its queries run in threads (:class:`ThreadRunner`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ocireg.auth.identity import Identity
from ocireg.handlers.base import readable
from ocireg.logs import event, relay
from ocireg.meta.db import MetaDB

if TYPE_CHECKING:
    from ..cve.store import CveStore
    from .execution import Executor
    from .facts import FactsCache

from .frames import encode, next_frame
from .settings import QUERY_TIMEOUT, SearchLimits
from .worker import FAILED, Query, Reply, Start

log = logging.getLogger("ocireg.search")

GRACE = 5.0  # seconds past queryTimeout before a query's process is killed
LAUNCH_TIMEOUT = 60.0  # seconds for a new search process to import and open the meta DB


def _error(message: str) -> bytes:
    return json.dumps({"data": None, "errors": [{"message": message}]}).encode()


class ThreadRunner:
    """Queries in ``workers`` threads of this worker process, for a meta DB that lives in its
    memory. A thread running Python gives the interpreter back to the loop only every switch
    interval, so a heavy query slows the registry's other requests: hence
    :class:`ProcessRunner` wherever the meta DB is a file."""

    def __init__(self, limits: SearchLimits, db: MetaDB, cve: CveStore | None = None) -> None:
        from .execution import Executor, SearchSchema  # GraphQL's libraries: only if used here
        from .facts import FactsCache
        from .schema import build_schema

        self.executor: Executor = Executor(build_schema(SearchSchema), limits)
        self.db = db
        self.cve = cve
        self.facts: FactsCache = FactsCache(db)
        self.pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="ocireg-search")

    async def answer(
        self, query: str, variables: dict[str, Any] | None, operation: str | None, who: Identity
    ) -> bytes:
        from .schema import Search

        search = Search(self.db, self.facts, who.user or "", readable, cve=self.cve)
        run = contextvars.copy_context().run  # the request (who asks) goes to the thread too
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.pool, run, self.executor.answer, query, variables, operation, search
        )

    async def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class ProcessGone(Exception):
    """The search process ended (crashed, killed) before it answered."""


class SearchProcess:
    """One search process and the pipes to it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.said: list[str] = []  # its last lines on stderr (a crash's traceback)
        self._listener = asyncio.create_task(self._listen())

    @classmethod
    async def launch(cls, start: Start) -> SearchProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ocireg.ext.search.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        launched = cls(process)
        try:
            ready = await asyncio.wait_for(launched._exchange(start), LAUNCH_TIMEOUT)
        except ProcessGone:
            await asyncio.wait({launched._listener}, timeout=5)  # what it said on its way out
            raise ProcessGone("\n".join(launched.said) or "it ended without a word") from None
        except TimeoutError:
            launched.kill()
            raise ProcessGone(f"not ready after {LAUNCH_TIMEOUT:.0f} s") from None
        except BaseException:
            launched.kill()
            raise
        if not isinstance(ready, Reply):
            launched.kill()
            raise ProcessGone("the search process did not start")
        event(log, logging.DEBUG, "search process started", process=process.pid)
        return launched

    async def ask(self, query: Query) -> Reply:
        reply = await self._exchange(query)
        if not isinstance(reply, Reply):
            raise ProcessGone("the search process answered something else")
        return reply

    async def _exchange(self, message: Start | Query) -> object:
        assert self.process.stdin is not None and self.process.stdout is not None
        # A process that died may not be reaped yet (``alive`` still says so) while its stdin
        # pipe is already closed; uvloop's write to a closed pipe raises RuntimeError, not a
        # ConnectionError. Nothing runs between this look and the write: no await.
        if self.process.stdin.is_closing():
            raise ProcessGone("the search process ended")
        try:
            self.process.stdin.write(encode(message))
            await self.process.stdin.drain()
            return await next_frame(self.process.stdout)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ProcessGone("the search process ended") from exc

    async def _listen(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.said = [*self.said[-19:], line.decode(errors="replace").rstrip()]

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


class ProcessRunner:
    """Queries in search processes of this worker process (see the module's docstring)."""

    def __init__(self, start: Start) -> None:
        self.start = start
        self.patience = start.limits.queryTimeout + GRACE
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(start.limits.workers)
        self._idle: list[SearchProcess] = []
        self._busy: set[SearchProcess] = set()

    def _bind(self) -> None:
        """Processes and their pipes belong to one event loop (tests run several apps)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._kill_all()
            self._loop, self._slots = loop, asyncio.Semaphore(self.start.limits.workers)

    async def answer(
        self, query: str, variables: dict[str, Any] | None, operation: str | None, who: Identity
    ) -> bytes:
        self._bind()
        async with self._slots:
            reused = self._idle.pop() if self._idle else None
            if reused is not None and reused.alive:
                try:
                    return await self._ask(reused, Query(query, variables, operation, who))
                except ProcessGone:
                    pass  # it died while idle, or of this query: one more try, in a new one
            try:
                process = await SearchProcess.launch(self.start)
            except ProcessGone as exc:
                log.error("search process failed to start: %s", exc)  # its words follow
                return _error(FAILED)
            try:
                return await self._ask(process, Query(query, variables, operation, who))
            except ProcessGone:
                log.error("search process %s ended while answering: %s",
                          process.process.pid, "\n".join(process.said) or "no output")  # fmt: skip
                return _error(FAILED)

    async def _ask(self, process: SearchProcess, query: Query) -> bytes:
        """The answer of ``process``, which goes back to the idle ones only after answering."""
        self._busy.add(process)
        try:
            reply = await asyncio.wait_for(process.ask(query), self.patience)
        except TimeoutError:
            process.kill()
            event(log, logging.WARNING, "search query stopped: it ran past queryTimeout",
                  process=process.process.pid)  # fmt: skip
            return _error(QUERY_TIMEOUT)
        except BaseException:  # gone, or the request cancelled: the query's process goes too
            process.kill()
            raise
        finally:
            self._busy.discard(process)
        self._idle.append(process)
        for name, level, line in reply.logs:
            relay(logging.getLogger(name), level, line)
        return reply.body

    async def warm(self) -> bool:
        """Start a search process before the first query needs one (at start, low priority):
        a first search should not wait a second for imports. Says whether it started one."""
        self._bind()
        async with self._slots:
            if self._idle:
                return False
            try:
                self._idle.append(await SearchProcess.launch(self.start))
            except ProcessGone as exc:
                log.error("search process failed to start: %s", exc)
                return False
        return True

    def _kill_all(self) -> None:
        for process in [*self._idle, *self._busy]:
            process.kill()
        self._idle.clear()
        self._busy.clear()

    async def close(self) -> None:
        self._kill_all()
