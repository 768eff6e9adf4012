from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth.slapd import Slapd, running_slapd


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
