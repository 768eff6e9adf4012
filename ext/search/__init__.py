"""``search``: zot's GraphQL search over the meta DB, at ``/v2/_zot/ext/search``."""

from __future__ import annotations

from ocireg.extensions.declaration import Extension

EXTENSION = Extension(
    name="search",
    description="GraphQL search of repositories and images (zot's search extension).",
    setup="ocireg.ext.search.handlers:setup",
    settings="ocireg.ext.search.settings:SearchSettings",
    namespace="_zot",
    specs=("ext/ext-zot-search.yaml",),
    definition="ext/ext-zot-search.md",
    extra="search",
    requires=("strawberry",),
)
