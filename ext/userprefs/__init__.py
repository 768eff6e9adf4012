"""``userprefs``: a user's stars and bookmarks on repositories (zot's userprefs extension),
kept in the meta DB and shown by search (``StarredRepos``, ``BookmarkedRepos``, ``StarCount``)."""

from __future__ import annotations

from ocireg.extensions.declaration import Extension

EXTENSION = Extension(
    name="userprefs",
    description="Stars and bookmarks of repositories, per user (zot's userprefs extension).",
    setup="ocireg.ext.userprefs.handlers:setup",
    namespace="_zot",
    specs=("ext/ext-zot-userprefs.yaml",),
    definition="ext/ext-zot-userprefs.md",
    follows=("search",),
)
