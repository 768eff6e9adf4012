"""``sync``: mirror upstream registries, periodically and on demand, with zot's keys.

The declaration only: the settings are in :mod:`.settings` (imported when a configuration has
the section) and the work in :mod:`.service` (imported when enabled).
"""

from __future__ import annotations

import importlib
from typing import Any

from ocireg.extensions.declaration import Extension

EXTENSION = Extension(
    name="sync",
    description="Mirror upstream registries, periodically and on demand (zot's sync).",
    setup="ocireg.ext.sync.service:setup",
    check="ocireg.ext.sync.settings:check",
    settings="ocireg.ext.sync.settings:SyncSettings",
    extra="sync",
    requires=("httpx",),
)


def __getattr__(name: str) -> Any:
    """The settings' names (``SyncSettings``, ``UpstreamRegistry``, ...) as before, from
    :mod:`.settings`, which is imported on this first use."""
    if name.startswith("__") or name == "settings":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    settings = importlib.import_module(f"{__name__}.settings")
    try:
        return getattr(settings, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
