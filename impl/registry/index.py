"""A repository's ``index.json``: every manifest in the repository, tags as ref.name annotations.

Reads are cached per process and validated by comparing the stored bytes, which is cheap and
correct whatever the driver's timestamps are and however many processes write. Writes happen
only under the repository lock (see ``Registry``), replace the file atomically, and refresh the
cache.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ocireg.registry import layout
from ocireg.registry.mediatypes import OCI_INDEX
from ocireg.storage.driver import PathNotFoundError, StorageDriver

Entry = dict[str, Any]
_CACHE_SIZE = 4096


def entry_tag(entry: Entry) -> str | None:
    annotations = entry.get("annotations") or {}
    tag = annotations.get(layout.REF_NAME)
    return tag if isinstance(tag, str) else None


@dataclass
class RepoIndex:
    raw: bytes
    entries: list[Entry]
    tags: dict[str, Entry] = field(init=False)
    by_digest: dict[str, Entry] = field(init=False)
    _sorted: list[str] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tags = {}
        self.by_digest = {}
        for entry in self.entries:
            tag = entry_tag(entry)
            if tag is not None:
                self.tags[tag] = entry
            self.by_digest.setdefault(entry["digest"], entry)

    def sorted_tags(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.tags)
        return self._sorted


def encode(entries: list[Entry]) -> bytes:
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return json.dumps(document, separators=(",", ":")).encode()


class IndexStore:
    def __init__(self, driver: StorageDriver) -> None:
        self._driver = driver
        self._cache: OrderedDict[str, RepoIndex] = OrderedDict()

    def load(self, repo: str) -> RepoIndex | None:
        """The repository's index, or None when the repository does not exist."""
        try:
            raw = self._driver.get_content(layout.index_file(repo))
        except PathNotFoundError:
            self._cache.pop(repo, None)
            return None
        cached = self._cache.get(repo)
        if cached is not None and cached.raw == raw:
            self._cache.move_to_end(repo)
            return cached
        document = json.loads(raw)
        manifests = document.get("manifests") or []
        index = RepoIndex(raw, [m for m in manifests if isinstance(m, dict) and "digest" in m])
        self._remember(repo, index)
        return index

    def save(self, repo: str, entries: list[Entry]) -> RepoIndex:
        raw = encode(entries)
        self._driver.put_content(layout.index_file(repo), raw)
        index = RepoIndex(raw, entries)
        self._remember(repo, index)
        return index

    def forget(self, repo: str) -> None:
        self._cache.pop(repo, None)

    def _remember(self, repo: str, index: RepoIndex) -> None:
        self._cache[repo] = index
        self._cache.move_to_end(repo)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)


def with_tag(entries: list[Entry], tag: str, descriptor: Entry) -> list[Entry]:
    """Point ``tag`` at ``descriptor``. The manifest the tag left stays in the repository
    (untagged if nothing else tags it); an untagged entry of the new digest is absorbed."""
    digest = descriptor["digest"]
    kept = [
        e for e in without_tag(entries, tag) if not (e["digest"] == digest and entry_tag(e) is None)
    ]
    tagged = dict(descriptor)
    tagged["annotations"] = {layout.REF_NAME: tag}
    return [*kept, tagged]


def with_manifest(entries: list[Entry], descriptor: Entry) -> list[Entry]:
    """Record an untagged manifest unless the repository already lists it."""
    if any(e["digest"] == descriptor["digest"] for e in entries):
        return entries
    return [*entries, dict(descriptor)]


def without_tag(entries: list[Entry], tag: str) -> list[Entry]:
    """Remove a tag; the manifest stays in the repository, untagged if nothing else tags it."""
    removed = [e for e in entries if entry_tag(e) == tag]
    kept = [e for e in entries if entry_tag(e) != tag]
    for entry in removed:
        if not any(e["digest"] == entry["digest"] for e in kept):
            untagged = {k: v for k, v in entry.items() if k != "annotations"}
            kept.append(untagged)
    return kept


def without_digest(entries: list[Entry], digest: str) -> list[Entry]:
    return [e for e in entries if e["digest"] != digest]
