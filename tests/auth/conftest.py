from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ocireg.auth.bearer import BearerAuth
from tests.auth.slapd import Slapd, running_slapd
from tests.auth.tokenserver import TokenServer

MakeTokenServer = Callable[..., TokenServer]


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """One seeded slapd per test process (so one per xdist worker); tests must not change it."""
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture
def private_slapd(tmp_path: Path) -> Iterator[Slapd]:
    """A slapd of the test's own, which it may stop."""
    with running_slapd(tmp_path / "slapd") as server:
        yield server


@pytest.fixture
def make_token_server(tmp_path: Path) -> Iterator[MakeTokenServer]:
    """``make_token_server(**options)``: a running TokenServer, stopped after the test."""
    started: list[TokenServer] = []
    counter = itertools.count()

    def make(**options: Any) -> TokenServer:
        server = TokenServer(tmp_path / f"token-server-{next(counter)}", **options)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> TokenServer:
    """A key and certificate for minting tokens in-process (no HTTP), shared by a module."""
    return TokenServer(tmp_path_factory.mktemp("signer"))


@pytest.fixture
def auth(signer: TokenServer) -> BearerAuth:
    return BearerAuth(signer.config())
