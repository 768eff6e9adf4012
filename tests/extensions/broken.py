"""An extension whose set-up always fails: how ``ocireg serve`` reports an app that cannot be
built (enable it with ``OCIREG_EXTENSIONS=tests.extensions.broken:EXTENSION``)."""

from __future__ import annotations

from typing import Any

from ocireg.extensions import Extension, ExtensionSettings

EXTENSION = Extension(
    name="broken",
    description="Fails at set-up (tests only).",
    setup="tests.extensions.broken:setup",
    settings=ExtensionSettings,
)


def setup(_context: Any) -> None:
    raise RuntimeError("the broken extension cannot start")
