"""A repository's ``index.json``: every manifest in the repository, tags as ref.name annotations.

Reads are cached per process. Each write stamps the file with a fresh generation token, written
as the first annotation so it sits in the file's first bytes: a reader checks that prefix (a
small read) rather than the whole file, and re-reads only when another writer (another worker
process) changed it. A file without our token (written by another tool) is compared in full.

Writes happen only under the repository lock (see ``Registry``) and replace the file
atomically. An :class:`IndexEdit` applies tag and manifest changes with the lookup maps, so a
push costs O(1) in Python plus one join of already-encoded entries, not a rebuild of the index.

A write that only appended entries (a push of new tags or manifests, the common case) also
names the version it extends and that version's length, so a process holding that version
parses only the appended tail instead of the whole file.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ocireg.registry import layout
from ocireg.registry.mediatypes import OCI_INDEX
from ocireg.storage.driver import PathNotFoundError, StorageDriver

Entry = dict[str, Any]
GENERATION = "io.ocireg.index.generation"
EXTENDS = "io.ocireg.index.extends"  # "<generation>:<length of its manifests array body>"
_CACHE_SIZE = 4096
_HEAD = 256
_HEAD_RE = re.compile(
    rb'"io\.ocireg\.index\.generation":"([0-9a-f]{32})"'
    rb'(?:,"io\.ocireg\.index\.extends":"([0-9a-f]{32}):([0-9]+)")?'
)
_MANIFESTS = b'"manifests":['


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
    # The body of the manifests array (the entries' JSON joined with commas) when known: read
    # from our own file, or kept by an edit that only appended, plus what it appended.
    body: bytes | None = None
    appended: list[bytes] = field(default_factory=list)
    extends: str | None = None  # EXTENDS of the file this version is written as
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

    def manifests_body(self) -> bytes:
        if self.body is None:
            pieces = []
            for entry in self.entries:
                piece = self.encoded.get(id(entry))
                if piece is None:
                    piece = self.encoded[id(entry)] = _encode_entry(entry)
                pieces.append(piece)
            self.body, self.appended = b",".join(pieces), []
        elif self.appended:
            self.body = b",".join([self.body, *self.appended] if self.body else self.appended)
            self.appended = []
        return self.body

    def encode(self) -> bytes:
        annotations = f'"{GENERATION}":"{self.generation}"'
        if self.extends is not None:
            annotations += f',"{EXTENDS}":"{self.extends}"'
        head = f'{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","annotations":{{{annotations}}},'
        return head.encode() + _MANIFESTS + self.manifests_body() + b"]}"


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
        # While the edit only appends (a push of a new manifest or tag), the base's body plus
        # the new entries' JSON: saving costs one join instead of a pass over every entry.
        self.body: bytes | None = None
        if base is None:
            self.body = b""
        elif base.body is not None:
            self.body = base.manifests_body()
        self.appended: list[bytes] = []
        self._extends = (
            f"{base.generation}:{len(self.body)}"
            if base is not None and base.generation is not None and self.body is not None
            else None
        )

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
            appended=self.appended,
            extends=self._extends if self.body is not None and self.appended else None,
        )

    def _append(self, entry: Entry) -> None:
        self.entries.append(entry)
        _add_to_maps(self, entry)
        if self.body is not None:
            self.appended.append(_encode_entry(entry))
            self.encoded[id(entry)] = self.appended[-1]

    def _remove(self, entry: Entry) -> None:
        position = next(i for i, e in enumerate(self.entries) if e is entry)
        del self.entries[position]
        self.body, self.appended = None, []
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
        # the event loop and threads (meta DB sync, a commit batch of a large manifest) share it
        self._cache_lock = threading.Lock()
        self.listeners: list[SaveListener] = []

    def load(self, repo: str) -> RepoIndex | None:
        """The repository's index, or None when the repository does not exist."""
        path = layout.index_file(repo)
        with self._cache_lock:
            cached = self._cache.get(repo)
        try:
            if cached is not None and cached.generation is not None:
                with self._driver.reader(path) as head:
                    match = _HEAD_RE.search(head.read(_HEAD))
                if match is not None and match[1].decode() == cached.generation:
                    self._touch(repo)
                    return cached
            raw = self._driver.get_content(path)
        except PathNotFoundError:
            self.forget(repo)
            return None
        if cached is not None and cached.raw is not None and cached.raw == raw:
            self._touch(repo)
            return cached
        index = self._parse(raw, cached)
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
        with self._cache_lock:
            self._cache.pop(repo, None)

    def _touch(self, repo: str) -> None:
        with self._cache_lock:
            if repo in self._cache:
                self._cache.move_to_end(repo)

    @staticmethod
    def _parse(raw: bytes, cached: RepoIndex | None) -> RepoIndex:
        match = _HEAD_RE.search(raw[:_HEAD])
        if match is None:  # another tool's file
            return RepoIndex.from_entries(_entries(json.loads(raw)), raw=raw)
        generation = match[1].decode()
        found = raw.find(_MANIFESTS, match.end())
        if found < 0:  # our token but not our layout (edited by hand): read it as any file
            return RepoIndex.from_entries(_entries(json.loads(raw)), raw=raw)
        start = found + len(_MANIFESTS)
        if cached is not None and match[2] is not None and match[2].decode() == cached.generation:
            try:
                return _extended(cached, generation, raw, start, int(match[3]))
            except (ValueError, TypeError, KeyError):
                pass  # not what it claims to be: read it in full
        entries = _entries(json.loads(raw))
        return RepoIndex.from_entries(entries, generation=generation, body=raw[start:-2])

    def _remember(self, repo: str, index: RepoIndex) -> None:
        with self._cache_lock:
            self._cache[repo] = index
            self._cache.move_to_end(repo)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)


def _extended(base: RepoIndex, generation: str, raw: bytes, start: int, length: int) -> RepoIndex:
    """The version in ``raw``, which appended entries to ``base`` (whose manifests array body
    is the ``length`` bytes at ``start``): only the appended tail is parsed."""
    tail = raw[start + length + (1 if length else 0) : -2]
    appended = _entries({"manifests": json.loads(b"[" + tail + b"]")})
    edit = IndexEdit(base)
    for entry in appended:
        edit.entries.append(entry)
        _add_to_maps(edit, entry)
    index = edit.result(generation)
    index.body, index.appended, index.extends = raw[start:-2], [], None
    return index


def _entries(document: Any) -> list[Entry]:
    manifests = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(manifests, list):
        return []
    return [m for m in manifests if isinstance(m, dict) and "digest" in m]
