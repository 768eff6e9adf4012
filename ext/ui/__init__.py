"""``ui``: the registry's web pages at ``/home`` (zot's key and path): browse, search, star and
bookmark repositories, log in and out, manage API keys. Server-rendered HTML that works with
JavaScript off; everything it serves ships in the wheel."""

from __future__ import annotations

from ocireg.extensions.declaration import Extension

EXTENSION = Extension(
    name="ui",
    description="Web pages to browse and search the registry (zot's ui extension).",
    setup="ocireg.ext.ui.app:setup",
    extra="ui",
    requires=("jinja2",),
    needs=("search",),  # as in zot: the pages are made of search's answers
)
