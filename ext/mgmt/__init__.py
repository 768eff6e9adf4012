"""``mgmt``: zot's read-only view of the configuration, stripped of everything secret, so that
clients such as ``zli`` and zot's web UI learn which authentication methods to offer.

As in zot, it is on whenever ``search`` is: zot's web UI reads it before its login page."""

from __future__ import annotations

from ocireg.extensions.declaration import Extension

EXTENSION = Extension(
    name="mgmt",
    description="The registry's sanitized configuration (zot's mgmt extension).",
    setup="ocireg.ext.mgmt.handlers:setup",
    namespace="_zot",
    specs=("ext/ext-zot-mgmt.yaml",),
    definition="ext/ext-zot-mgmt.md",
    follows=("search",),
)
