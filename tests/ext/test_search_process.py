"""Search queries run in a process of their own, below the registry's CPU priority, and that
process is replaced when it dies, stopped when a query overruns, and gone with the server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop

from tests.liveserver import LiveServer, live_server

SEARCH = "/v2/_zot/ext/search"
QUERY = "{ RepoListWithNewestImage { Page { TotalCount } } }"
WORKER = b"ocireg.ext.search.worker"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        children = _children(queue.pop())
        found += children
        queue += children
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 (state) on; [] once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _gone(pid: int) -> bool:
    fields = _stat(pid)
    return not fields or fields[0] == "Z"  # a zombie has ended; its parent reaps it


def _search_processes(server: LiveServer, wanted: int = 1, timeout: float = 30) -> list[int]:
    """The server's search processes, once there are ``wanted`` live ones (started, perhaps
    not ready yet)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [pid for pid in _descendants(server.process.pid)
                 if WORKER in _cmdline(pid) and not _gone(pid)]  # fmt: skip
        if len(found) >= wanted or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _search(client: httpx.Client, query: str = QUERY) -> dict[str, Any]:
    response = client.post(SEARCH, json={"query": query})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


LIMITS = {"extensions": {"search": {"limits": {"queryTimeout": "1s", "maxAliases": 1}}}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the tests that leave it running (each finds its search process anew)."""
    with live_server(tmp_path_factory.mktemp("search-process"), LIMITS) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def _ready(server: LiveServer, client: httpx.Client) -> int:
    """The search process, once it has answered a query."""
    assert "errors" not in _search(client)
    [searcher] = _search_processes(server)
    return searcher


def test_queries_run_in_one_search_process_below_the_registry_priority(
    server: LiveServer, client: httpx.Client
) -> None:
    [searcher] = _search_processes(server)  # started with the server (the first test to run)
    for _ in range(3):
        assert _search(client) == {"data": {"RepoListWithNewestImage": {"Page": {"TotalCount": 0}}}}
    assert _search_processes(server) == [searcher]
    worker_nice = int(_stat(server.process.pid)[16])
    assert int(_stat(searcher)[16]) == worker_nice + 10


def test_a_search_process_that_died_is_replaced_without_failing_a_query(
    server: LiveServer, client: httpx.Client
) -> None:
    searcher = _ready(server, client)
    os.kill(searcher, signal.SIGKILL)
    assert "errors" not in _search(client)
    [replacement] = _search_processes(server)
    assert replacement != searcher


def test_a_query_past_its_time_is_answered_with_an_error_and_its_process_stopped(
    server: LiveServer, client: httpx.Client
) -> None:
    searcher = _ready(server, client)
    os.kill(searcher, signal.SIGSTOP)  # a query stuck where it cannot notice its deadline
    try:
        body = _search(client)
    finally:
        if not _gone(searcher):
            os.kill(searcher, signal.SIGCONT)
    assert body["data"] is None
    assert "extensions.search.limits.queryTimeout" in body["errors"][0]["message"]
    deadline = time.monotonic() + 10
    while not _gone(searcher):
        assert time.monotonic() < deadline, "the overrunning search process was not stopped"
        time.sleep(0.1)
    assert "errors" not in _search(client)
    assert "search query stopped: it ran past queryTimeout" in server.log.read_text()


def test_what_the_search_process_logs_reaches_the_registry_log(
    server: LiveServer, client: httpx.Client
) -> None:
    body = _search(client, "{ a: RepoListWithNewestImage { Page { TotalCount } } "
                           "b: RepoListWithNewestImage { Page { TotalCount } } }")  # fmt: skip
    assert body["errors"][0]["extensions"]["limit"] == "maxAliases"
    [searcher] = _search_processes(server)
    refused = [line for line in server.log_lines() if "search query refused" in line]
    assert len(refused) == 1 and f'"pid":{searcher}' in refused[0]


def test_the_search_process_ends_with_its_server(tmp_path: Path) -> None:
    with live_server(tmp_path, {"extensions": {"search": {}}}) as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            searcher = _ready(server, client)
        os.kill(server.process.pid, signal.SIGKILL)  # no shutdown: the pipes close with it
        server.process.wait()
        deadline = time.monotonic() + 15
        while not _gone(searcher):
            assert time.monotonic() < deadline, "the search process outlived its server"
            time.sleep(0.1)


# In a process of its own: freezing is for the whole interpreter.
_SETTLE = """
import gc
from ocireg.ext.search.worker import settle

settle()
first = gc.get_freeze_count()
facts = [[i, [i]] for i in range(5000)]  # what the first query builds and keeps
cycle = [[]]
cycle[0].append(cycle)  # and garbage in a cycle, which only a collection frees
del cycle
settle()
print(first, gc.get_freeze_count() - first, len(gc.get_objects()), gc.collect())
"""


def test_the_search_process_leaves_what_it_keeps_out_of_later_collections() -> None:
    """After start and after a heavy query (``settle``), what is alive (the facts of every
    repository) is frozen: a later full collection walks none of it, and the cycles that were
    garbage were collected first."""
    done = subprocess.run(
        [sys.executable, "-c", _SETTLE], capture_output=True, text=True, check=True, timeout=60
    )
    first, added, walked, found = map(int, done.stdout.split())
    assert first > 1000  # modules, classes, functions: frozen after start
    assert added > 9_000  # the facts' 10,000 lists, frozen by the second settle
    assert walked < 100  # a collection now walks only what is new since
    assert found == 0  # the cycle was freed before the freeze, not frozen


# importing the runner imports connexion, which warns (its jsonschema RefResolver, starlette's
# test client)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient.")
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_query_to_a_process_whose_stdin_has_closed_is_process_gone(loop: str) -> None:
    """A search process killed between two queries is found gone before it is reaped: its
    stdin pipe is closed. The next query must be ProcessGone (the runner then starts a new
    process), not uvloop's RuntimeError for a write to a closed pipe (a 500)."""
    from ocireg.auth.identity import ANONYMOUS
    from ocireg.ext.search.runners import ProcessGone, SearchProcess
    from ocireg.ext.search.worker import Query

    async def ask_after_close() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdin.buffer.read()",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        searcher = SearchProcess(process)
        try:
            assert process.stdin is not None
            process.stdin.close()  # what the loop does once the pipe's reader is gone
            await process.stdin.wait_closed()
            with pytest.raises(ProcessGone):
                await searcher.ask(Query(QUERY, None, None, ANONYMOUS))
        finally:
            searcher.kill()
            await process.wait()

    factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(ask_after_close())
