"""What ``ocireg cve update`` reports about a source."""

from __future__ import annotations


class SourceError(ValueError):
    """A source that cannot be read at all (missing, not a zip or directory, a failed download)."""
