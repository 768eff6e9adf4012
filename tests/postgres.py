"""A throwaway PostgreSQL cluster (Debian's postgresql), started once per test session.

``initdb`` refuses root, so the server runs as the unprivileged ``postgres`` user, in a temporary
directory it owns, on a loopback port (and a Unix socket in that directory), with fsync off.
Import the ``postgres`` fixture into a test module; ``postgres.new_database()`` is an empty
database of the test's own, made from ``template0`` (``CREATE DATABASE ... TEMPLATE``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.liveserver import free_port
from tests.tools import missing

SERVER_USER = "postgres"
DEBIAN_ROOT = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a fresh, empty database."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:20]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)


def _binaries() -> Path | None:
    found = sorted(DEBIAN_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _as_server_user(*command: str | Path) -> None:
    runuser = shutil.which("runuser")
    assert runuser is not None
    subprocess.run(
        [runuser, "-u", SERVER_USER, "--", *map(str, command)],
        check=True,
        capture_output=True,
    )


def _unprivileged() -> bool:
    """Whether this process cannot start the server as someone else: it then runs it itself."""
    return os.geteuid() != 0


@contextmanager
def throwaway_cluster(*settings: str) -> Iterator[Postgres]:
    """Start a throwaway cluster (``settings``: extra ``name=value`` server settings); raise
    ``RuntimeError`` when PostgreSQL is not installed. The benchmarks use it too."""
    binaries = _binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    # /tmp, not pytest's tmp_path: the server's user must be able to reach the directory
    folder = Path(tempfile.mkdtemp(prefix="ocireg-pg-"))
    data, sock, log = folder / "data", folder / "sock", folder / "log"
    sock.mkdir()
    run = _run_directly if _unprivileged() else _as_server_user
    if not _unprivileged():
        shutil.chown(folder, SERVER_USER, SERVER_USER)
        shutil.chown(sock, SERVER_USER, SERVER_USER)
    port = free_port()
    pg_ctl = binaries / "pg_ctl"
    try:
        run(binaries / "initdb", "-D", data, "-U", SERVER_USER, "--auth=trust", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync")  # fmt: skip
        options = f"-k {sock} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += "".join(f" -c {setting}" for setting in settings)
        run(pg_ctl, "-D", data, "-l", log, "-w", "-o", options, "start")
        try:
            yield Postgres("127.0.0.1", port)
        finally:
            run(pg_ctl, "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg is not installed; install the test extra (psycopg[binary])")
    if _binaries() is None:
        missing("PostgreSQL is not installed; install it with: apt-get install postgresql")
    with throwaway_cluster() as cluster:
        yield cluster


def _run_directly(*command: str | Path) -> None:
    subprocess.run(list(map(str, command)), check=True, capture_output=True)
