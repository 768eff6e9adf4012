"""Outside tools for end-to-end tests: skip when absent, fail under OCIREG_REQUIRE_E2E=1."""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_ENV = "OCIREG_REQUIRE_E2E"


def e2e_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def missing(reason: str) -> None:
    """Skip, or fail when CI demands every end-to-end test runs."""
    if e2e_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 forbids skipping)")
    pytest.skip(reason)


def require_binary(name: str, install_hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not on PATH; install it with: {install_hint}")
    assert path is not None
    return path
