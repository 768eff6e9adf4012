from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.extended import ALL_ON, example_env
from tests.liveserver import LiveServer, live_server

_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def _user_cache_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``ocireg`` commands that tests run (live servers, CLI subprocesses) keep the user's
    cache (compiled dataclass methods, spec-checked marks) under ``XDG_CACHE_HOME``: a
    directory of this session, not the developer's real ``~/.cache/ocireg``, which a test must
    neither read (what it tests would depend on earlier runs) nor rewrite. Subprocesses
    inherit it from this process's environment."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache))
        yield cache


@pytest.fixture(autouse=True)
def _no_borrowed_event_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Playwright's sync API (the web UI's tests share one browser per session) leaves its event
    loop marked as running in the main thread between its calls, and asyncio.run refuses to
    start under it: a test that does not use the browser runs with no running loop, and the
    browser's is put back afterwards (its dispatcher does not run meanwhile)."""
    borrowed = asyncio._get_running_loop()
    if borrowed is None or "browser" in request.fixturenames:
        yield
        return
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(borrowed)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live registry shared by the integration tests (each test uses its own repos)."""
    with live_server(tmp_path_factory.mktemp("server")) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name unique to the test."""
    base = request.node.name.lower()
    cleaned = "".join(c if c.isalnum() else "-" for c in base).strip("-")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return f"t{next(_counter)}/{cleaned[:60].strip('-') or 'repo'}"


@pytest.fixture
def tmp_root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A registry with the extensions of tests/extended.py enabled."""
    with live_server(tmp_path_factory.mktemp("extended"), ALL_ON, example_env()) as live:
        yield live


@pytest.fixture
def ext_client(extended: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=extended.url, timeout=30) as http:
        yield http
