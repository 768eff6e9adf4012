"""Two ``ocireg serve`` processes sharing one moto bucket and one PostgreSQL database, each with
a local directory of its own (two machines behind a load balancer): for tests of the state that
every instance must see, whichever one a request reaches.

Import the ``postgres`` and ``s3_endpoint`` session fixtures into the test module, then::

    with two_instances(tmp_path, s3_endpoint, postgres, {"http": {...}}) as (one, two): ...
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.liveserver import LiveServer, live_server
from tests.postgres import Postgres
from tests.s3server import ENV, S3Endpoint

READY = "start-up cleanup done"  # logged once start-up's work on the shared storage is over


def shared_config(s3: S3Endpoint, postgres: Postgres, extra: dict[str, Any]) -> dict[str, Any]:
    """``extra``'s sections, with storage on a fresh bucket and the meta DB on a fresh database."""
    config = {section: dict(values) for section, values in extra.items()}
    storage = config.setdefault("storage", {})
    storage["storageDriver"] = s3.driver_config(s3.new_bucket(), rootdirectory="/registry")
    storage["cacheDriver"] = {"name": "postgres", "url": postgres.new_database()}
    return config


@contextmanager
def two_instances(
    directory: Path, s3: S3Endpoint, postgres: Postgres, extra: dict[str, Any] | None = None
) -> Iterator[tuple[LiveServer, LiveServer]]:
    config = shared_config(s3, postgres, extra or {})
    with (
        live_server(directory / "one", config, env=ENV) as one,
        live_server(directory / "two", config, env=ENV) as two,
    ):
        for server in (one, two):
            wait_for_log(server, READY)
        yield one, two


def wait_for_log(server: LiveServer, message: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(message in line for line in server.log_lines()):
        assert time.monotonic() < deadline, f"no {message!r} in the log"
        time.sleep(0.1)
