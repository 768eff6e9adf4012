"""One layer's reading, kept by its digest so that images sharing the layer do not read it again.

A layer's contribution to an image depends on the layers below it (its whiteouts and the files
it puts over theirs hide what they hold), so what is kept is the layer on its own: the wanted
files it adds, as their readers found them; its whiteouts; and every path it puts a file or a
directory at. ``scan.stacked`` lays it over any stack of lower layers, cheaply.

The kept form is compressed JSON behind a version line: a reading kept by other readers (an
older ``READERS``) is read again, not trusted.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from .overlay import Entry
from .records import Placed, Record

# bump when a reader finds something different in the same file: kept readings are then stale
READERS = 1
_HEADER = b"ocireg-layer-reading %d\n" % READERS


@dataclass
class LayerRead:
    removed: set[str] = field(default_factory=set)  # whiteouts: a path and everything under it
    emptied: set[str] = field(default_factory=set)  # opaque whiteouts: under a directory
    added: dict[str, Entry] = field(default_factory=dict)  # the wanted files
    files: set[str] = field(default_factory=set)  # every non-directory path
    directories: set[str] = field(default_factory=set)  # every directory path
    links: dict[str, str] = field(default_factory=dict)  # hard links to lower layers' files


class LayerCache(Protocol):
    """Where layer readings are kept (the CVE tables, ``cve_layers``)."""

    def get(self, digest: str) -> bytes | None: ...

    def put(self, digest: str, reading: bytes) -> None: ...


def _record(record: Record) -> list[str]:
    return [
        record.kind,
        record.name,
        record.version,
        record.source_name,
        record.source_version,
        record.arch,
        record.epoch,
        record.raw_version,
    ]


def _entry(entry: Entry) -> dict[str, Any]:
    # every record a layer adds was installed by that layer: its digest is not repeated
    found: dict[str, Any] = {}
    if entry.records:
        found["r"] = [_record(placed.record) for placed in entry.records]
    if entry.text:
        found["t"] = entry.text
    if entry.link:
        found["l"] = entry.link
    return found


def encode(read: LayerRead, layer: str) -> bytes:
    document = {
        "removed": sorted(read.removed),
        "emptied": sorted(read.emptied),
        "added": {path: _entry(entry) for path, entry in read.added.items()},
        "files": sorted(read.files),
        "directories": sorted(read.directories),
        "links": read.links,
    }
    return _HEADER + zlib.compress(json.dumps(document, separators=(",", ":")).encode())


def decode(kept: bytes, layer: str) -> LayerRead | None:
    """The reading kept for ``layer``; None when it was kept by other readers (or is damaged:
    the layer is then read again)."""
    if not kept.startswith(_HEADER):
        return None
    try:
        document = json.loads(zlib.decompress(kept[len(_HEADER) :]))
        added = {
            path: Entry(
                records=tuple(Placed(Record(*fields), layer) for fields in found.get("r", ())),
                text=found.get("t", ""),
                link=found.get("l", ""),
            )
            for path, found in document["added"].items()
        }
        return LayerRead(
            removed=set(document["removed"]),
            emptied=set(document["emptied"]),
            added=added,
            files=set(document["files"]),
            directories=set(document["directories"]),
            links=dict(document["links"]),
        )
    except (zlib.error, ValueError, KeyError, TypeError):
        return None
