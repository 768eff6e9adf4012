"""A registry with the client report on, as an in-process ASGI app (memory storage)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ocireg.config import Config
from ocireg.storage.memory import MemoryDriver

with warnings.catch_warnings():
    # connexion's imports use deprecated jsonschema and starlette names; not ours to fix
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

    from ocireg.app import create_app

REPORT = "/v2/_ocireg/clients/report"


@contextmanager
def registry(
    report: bool = True, driver: MemoryDriver | None = None, **sections: Any
) -> Iterator[TestClient]:
    """``sections`` are top-level configuration sections (``http``, ``extensions``)."""
    document: dict[str, Any] = {"storage": {"rootDirectory": "/unused"}, **sections}
    if report:
        document.setdefault("extensions", {}).setdefault("clientreport", {})
    app = create_app(Config.model_validate(document), driver or MemoryDriver())
    with TestClient(app) as client:
        yield client


def departures(report: dict[str, Any], user_agent: str) -> dict[str, dict[str, Any]]:
    """The departures of one client, by rule."""
    (client,) = [c for c in report["clients"] if c["userAgent"] == user_agent]
    return {departure["rule"]: departure for departure in client["departures"]}
