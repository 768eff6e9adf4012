"""``sync``: mirror upstream registries, periodically and on demand, with zot's keys.

The declaration only: the settings are in :mod:`.settings` (imported when a configuration has
the section) and the work in :mod:`.service` (imported when enabled).
"""

from __future__ import annotations

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
