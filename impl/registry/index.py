"""A repository's ``index.json``: every manifest in the repository, tags as ref.name annotations.

Reads are cached per process. Each write stamps the file with a fresh generation token, written
as the first annotation so it sits in the file's first bytes: a reader checks that prefix (a
small read) rather than the whole file, and re-reads only when another writer (another worker
process) changed it. A file without our token (written by another tool) is compared in full.

Writes happen only under the repository lock (see ``Registry``) and replace the file
atomically. An :class:`IndexEdit` applies tag and manifest changes with the lookup maps, so a
push costs O(1) in Python plus one join of already-encoded entries, not a rebuild of the index.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ocireg.registry import layout
from ocireg.registry.mediatypes import OCI_INDEX
from ocireg.storage.driver import PathNotFoundError, StorageDriver

Entry = dict[str, Any]
GENERATION = "io.ocireg.index.generation"
_CACHE_SIZE = 4096
_HEAD = 256
_HEAD_RE = re.compile(rb'"io\.ocireg\.index\.generation":"([0-9a-f]{32})"')
_PREFIX = '{"schemaVersion":2,"mediaType":"' + OCI_INDEX + '","annotations":{"' + GENERATION


def entry_tag(entry: Entry) -> str | None:
    annotations = entry.get("annotations") or {}
    tag = annotations.get(layout.REF_NAME)
    return tag if isinstance(tag, str) else None


def _encode_entry(entry: Entry) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode()


@dataclass
class RepoIndex:
    """One version of a repository's index, with its lookup maps. Never mutated once built."""

    entries: list[Entry]
    generation: str | None = None
    raw: bytes | None = None  # kept only for files without our generation token
    tags: dict[str, Entry] = field(default_factory=dict)
    by_digest: dict[str, Entry] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # entries per digest
    untagged: dict[str, Entry] = field(default_factory=dict)
    encoded: dict[int, bytes] = field(default_factory=dict)  # id(entry) -> its JSON
    # the entries' JSON joined with commas, when already known (an edit that only appended)
    body: bytes | None = None
    _sorted: list[str] | None = field(default=None, init=False)

    @classmethod
    def from_entries(cls, entries: list[Entry], **extra: Any) -> RepoIndex:
        index = cls(entries, **extra)
        for entry in entries:
            _add_to_maps(index, entry)
        return index

    @property
    def stamp(self) -> str:
        """What identifies this version of the file: our generation token, or for a file
        another tool wrote, a hash of its bytes."""
        if self.generation is not None:
            return self.generation
        return "sha256:" + hashlib.sha256(self.raw or b"").hexdigest()

    def sorted_tags(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.tags)
        return self._sorted

    def encode(self) -> bytes:
        if self.body is None:
            pieces = []
            for entry in self.entries:
                piece = self.encoded.get(id(entry))
                if piece is None:
                    piece = self.encoded[id(entry)] = _encode_entry(entry)
                pieces.append(piece)
            self.body = b",".join(pieces)
        head = f'{_PREFIX}":"{self.generation}"}},"manifests":['.encode()
        return head + self.body + b"]}"


class IndexEdit:
    """Changes to one index, applied to copies of its entries and maps."""

    def __init__(self, base: RepoIndex | None) -> None:
        self.base_stamp = base.stamp if base else None
        self.entries = list(base.entries) if base else []
        self.tags = dict(base.tags) if base else {}
        self.by_digest = dict(base.by_digest) if base else {}
        self.counts = dict(base.counts) if base else {}
        self.untagged = dict(base.untagged) if base else {}
        self.encoded = dict(base.encoded) if base else {}
        # kept up to date while the edit only appends (a push of a new manifest or tag), so
        # saving costs one concatenation instead of a pass over every entry
        self.body: bytes | None = base.body if base else b""

    def add_manifest(self, descriptor: Entry) -> None:
        """Record an untagged manifest unless the repository already lists it."""
        if descriptor["digest"] not in self.counts:
            self._append(dict(descriptor))

    def set_tag(self, tag: str, descriptor: Entry) -> None:
        """Point ``tag`` at ``descriptor``. The manifest the tag left stays in the repository
        (untagged if nothing else tags it); an untagged entry of the new digest is absorbed."""
        current = self.tags.get(tag)
        digest = descriptor["digest"]
        if current is not None and current["digest"] == digest:
            return
        if current is not None:
            self.remove_tag(tag)
        untagged = self.untagged.get(digest)
        if untagged is not None:
            self._remove(untagged)
        tagged = dict(descriptor)
        tagged["annotations"] = {layout.REF_NAME: tag}
        self._append(tagged)

    def remove_tag(self, tag: str) -> None:
        """Remove a tag; the manifest stays in the repository, untagged if nothing else tags it."""
        entry = self.tags.get(tag)
        if entry is None:
            return
        self._remove(entry)
        if entry["digest"] not in self.counts:
            self._append({k: v for k, v in entry.items() if k != "annotations"})

    def remove_digest(self, digest: str) -> None:
        for entry in [e for e in self.entries if e["digest"] == digest]:
            self._remove(entry)

    def result(self, generation: str) -> RepoIndex:
        return RepoIndex(
            self.entries,
            generation,
            tags=self.tags,
            by_digest=self.by_digest,
            counts=self.counts,
            untagged=self.untagged,
            encoded=self.encoded,
            body=self.body,
        )

    def _append(self, entry: Entry) -> None:
        self.entries.append(entry)
        _add_to_maps(self, entry)
        if self.body is not None:
            piece = self.encoded[id(entry)] = _encode_entry(entry)
            self.body = self.body + b"," + piece if len(self.entries) > 1 else piece

    def _remove(self, entry: Entry) -> None:
        position = next(i for i, e in enumerate(self.entries) if e is entry)
        del self.entries[position]
        self.body = None
        self.encoded.pop(id(entry), None)
        digest = entry["digest"]
        tag = entry_tag(entry)
        if tag is not None and self.tags.get(tag) is entry:
            del self.tags[tag]
        if self.untagged.get(digest) is entry:
            del self.untagged[digest]
        self.counts[digest] -= 1
        if self.counts[digest] == 0:
            del self.counts[digest]
            del self.by_digest[digest]
        elif self.by_digest[digest] is entry:
            self.by_digest[digest] = next(e for e in self.entries if e["digest"] == digest)


def _add_to_maps(maps: RepoIndex | IndexEdit, entry: Entry) -> None:
    """Index one entry by tag (or as untagged), by digest, and in the per-digest count."""
    digest = entry["digest"]
    tag = entry_tag(entry)
    if tag is None:
        maps.untagged.setdefault(digest, entry)
    else:
        maps.tags[tag] = entry
    maps.by_digest.setdefault(digest, entry)
    maps.counts[digest] = maps.counts.get(digest, 0) + 1


# Told after each save: (repo, stamp before, stamp after); the meta DB follows the chain.
SaveListener = Callable[[str, str | None, str], None]


class IndexStore:
    def __init__(self, driver: StorageDriver) -> None:
        self._driver = driver
        self._cache: OrderedDict[str, RepoIndex] = OrderedDict()
        self.listeners: list[SaveListener] = []

    def load(self, repo: str) -> RepoIndex | None:
        """The repository's index, or None when the repository does not exist."""
        path = layout.index_file(repo)
        cached = self._cache.get(repo)
        try:
            if cached is not None and cached.generation is not None:
                with self._driver.reader(path) as head:
                    match = _HEAD_RE.search(head.read(_HEAD))
                if match is not None and match[1].decode() == cached.generation:
                    self._cache.move_to_end(repo)
                    return cached
            raw = self._driver.get_content(path)
        except PathNotFoundError:
            self._cache.pop(repo, None)
            return None
        if cached is not None and cached.raw is not None and cached.raw == raw:
            self._cache.move_to_end(repo)
            return cached
        index = self._parse(raw)
        self._remember(repo, index)
        return index

    def edit(self, repo: str) -> IndexEdit:
        """Start changing ``repo``'s index; call only under the repository lock."""
        return IndexEdit(self.load(repo))

    def save(self, repo: str, edit: IndexEdit) -> RepoIndex:
        index = edit.result(secrets.token_hex(16))
        self._driver.put_content(layout.index_file(repo), index.encode())
        self._remember(repo, index)
        for listener in self.listeners:
            listener(repo, edit.base_stamp, index.stamp)
        return index

    def forget(self, repo: str) -> None:
        self._cache.pop(repo, None)

    @staticmethod
    def _parse(raw: bytes) -> RepoIndex:
        document = json.loads(raw)
        manifests = document.get("manifests") or []
        entries = [m for m in manifests if isinstance(m, dict) and "digest" in m]
        match = _HEAD_RE.search(raw[:_HEAD])
        if match is not None:
            return RepoIndex.from_entries(entries, generation=match[1].decode())
        return RepoIndex.from_entries(entries, raw=raw)

    def _remember(self, repo: str, index: RepoIndex) -> None:
        self._cache[repo] = index
        self._cache.move_to_end(repo)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
