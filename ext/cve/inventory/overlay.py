"""The image's file system as far as the inventory cares: layers stacked, whiteouts applied.

Only the files a reader wants are kept, each as what its reader found in it, never as bytes.
A layer's whiteouts (``.wh.<name>`` removes ``<name>``; ``.wh..wh..opq`` in a directory removes
what lower layers put in it) and any non-directory entry at a path (which hides what lower
layers had under that path) apply to the lower layers only, before the layer's own files are
laid over them: the OCI image spec's order.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from .records import Placed

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


def clean_path(name: str) -> str:
    """A member name as a path relative to the image root ("" for the root itself); ``..``
    above the root stays at the root, as a runtime resolves it."""
    return posixpath.normpath("/" + name.lstrip("/"))[1:]


def whiteout_target(path: str) -> tuple[str, bool] | None:
    """For a whiteout entry: (what it removes, whether it is an opaque marker)."""
    directory, base = posixpath.split(path)
    if base == OPAQUE_MARKER:
        return directory, True
    if base.startswith(WHITEOUT_PREFIX):
        return posixpath.join(directory, base[len(WHITEOUT_PREFIX) :]), False
    return None


@dataclass
class Entry:
    """What one wanted file holds: package records, an os-release text, or a symbolic link."""

    records: tuple[Placed, ...] = ()
    text: str = ""
    link: str = ""


@dataclass
class LayerChanges:
    removed: set[str] = field(default_factory=set)  # a path and everything under it
    emptied: set[str] = field(default_factory=set)  # everything under a directory
    added: dict[str, Entry] = field(default_factory=dict)


def _parents(path: str) -> list[str]:
    parents = []
    while "/" in path:
        path = path.rpartition("/")[0]
        parents.append(path)
    return parents


def _hidden(path: str, changes: LayerChanges) -> bool:
    if path in changes.removed:
        return True
    directory = path
    while directory:
        directory = posixpath.dirname(directory)
        if directory in changes.removed or directory in changes.emptied:
            return True
    return False


class Overlay:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self._directories: set[str] = set()  # every directory holding a kept entry

    def covers(self, path: str) -> bool:
        """Whether a kept entry is at ``path`` or under it."""
        return path in self.entries or path in self._directories

    def apply(self, changes: LayerChanges) -> None:
        doomed = set()
        if changes.removed or changes.emptied:
            doomed = {path for path in self.entries if _hidden(path, changes)}
        previous = {path: self.entries.pop(path) for path in doomed}
        for path, entry in changes.added.items():
            self.entries[path] = _keep_layers(entry, self.entries.get(path) or previous.get(path))
        if doomed or changes.added:
            self._directories = {directory for path in self.entries for directory in _parents(path)}

    def resolve(self, path: str, hops: int = 8) -> Entry | None:
        """The entry at ``path``, following symbolic links among the kept entries."""
        entry = self.entries.get(path)
        while entry is not None and entry.link and hops > 0:
            target = posixpath.join(posixpath.dirname(path), entry.link)
            path = clean_path(target)
            entry = self.entries.get(path)
            hops -= 1
        return None if entry is None or entry.link else entry


def _keep_layers(entry: Entry, before: Entry | None) -> Entry:
    """A package database rewritten by a later layer (``apt-get install`` rewrites the whole
    dpkg status) keeps, for every package it lists unchanged, the layer that installed it."""
    if before is None or not before.records or not entry.records:
        return entry
    earlier = {placed.record: placed.layer for placed in before.records}
    records = tuple(
        Placed(placed.record, earlier.get(placed.record, placed.layer)) for placed in entry.records
    )
    return Entry(records=records, text=entry.text, link=entry.link)
