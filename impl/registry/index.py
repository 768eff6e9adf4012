"""A repository's ``index.json``: every manifest in the repository, tags as ref.name annotations.

Reads are cached per process. Each write stamps the file with a fresh generation token, written
as the first annotation so it sits in the file's first bytes: a reader checks that prefix (a
small read) rather than the whole file, and re-reads only when another writer (another worker
process) changed it. A file without our token (written by another tool) is compared in full.

Writes happen only under the repository lock (see ``Registry``) and replace the file
atomically, so the file on disk is always a complete OCI image index. A push must not cost in
proportion to the repository's size, except for writing the file itself:

- An :class:`IndexEdit` applies tag and manifest changes to the lookup maps, which are
  :class:`~ocireg.registry.overlay.Overlay`\\ s sharing one base between versions, so a new
  version copies only the recent changes, not a map entry per tag.
- The manifests array is kept as the bytes it has in the file, in a few chunks (each chunk's
  entries and their JSON; sizes halve from one chunk to the next, so there are O(log n)). An
  append adds a chunk of the new entries' JSON and merges the small ones; writing the file
  hands the chunks to the storage driver as they are, without joining them first.
- Versions that only appended to the one before them form a run, named in the file by its
  first version's generation (RUN). The manifests array of any version of a run begins with
  the array of every earlier version of the run, byte for byte, so a process holding any
  version of the file's run reads and parses only what follows it (a seek past what it
  already has), not the whole file, however many versions other processes wrote meanwhile.

A removal (a tag moved or deleted, a manifest deleted, GC) rebuilds the array from the entries'
kept encodings and is read in full by other processes.

The head also carries a *removals token* (REMOVALS), which changes only when something that
removes blob files from the repository (GC, blob DELETE) saves the index, which it does under
the repository lock before it deletes anything. A process remembers the blobs a push found
under the lock, with the token it read; a later push whose read of the index (under the lock,
which it makes anyway) shows the same token knows that nothing was removed since, so those
blobs are still there and are not asked of storage again (on S3 a HEAD each). See
:meth:`IndexStore.edit`. Only on a driver where asking for a blob is a network request
(``StorageDriver.blob_check_is_request``, S3): on local disk a check is a stat(), less than
the index rewrite a token change costs each blob DELETE and GC pass, so there the file has
no token and nothing is remembered.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from ocireg.registry import layout
from ocireg.registry.mediatypes import OCI_INDEX
from ocireg.registry.overlay import Overlay
from ocireg.storage.driver import PathNotFoundError, StorageDriver

Entry = dict[str, Any]
GENERATION = "io.ocireg.index.generation"
RUN = "io.ocireg.index.run"  # generation of the first version of an append-only run
REMOVALS = "io.ocireg.index.removals"  # changes when blob files may have been removed
_CACHE_SIZE = 4096
_HEAD = 512  # holds the annotations and the start of the manifests array of our own files
_HEAD_RE = re.compile(
    rb'"io\.ocireg\.index\.generation":"([0-9a-f]{32})"'
    rb'(?:,"io\.ocireg\.index\.run":"([0-9a-f]{32})")?'
    rb'(?:,"io\.ocireg\.index\.removals":"([0-9a-f]{32})")?'
)
# Blobs remembered as found (a bound on memory, not a rule): per repository, and in all
# repositories together, the least recently pushed to forgotten first (about 4 MiB of digests).
_FOUND_MOST = 4096
_FOUND_TOTAL = 32768
_MANIFESTS = b'"manifests":['
_END = b"]}"
_OVERLAP = 64  # bytes of a held version's array end checked against the file before a tail


def entry_tag(entry: Entry) -> str | None:
    annotations = entry.get("annotations") or {}
    tag = annotations.get(layout.REF_NAME)
    return tag if isinstance(tag, str) else None


def _encode_entry(entry: Entry) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Chunk:
    """Consecutive entries of the manifests array and their JSON, comma-joined, byte for byte
    as in the file. Never changed: versions of an index share them."""

    entries: list[Entry]
    body: bytes


def _merged(chunks: tuple[Chunk, ...]) -> tuple[Chunk, ...]:
    """``chunks`` with the last ones merged until each is over twice the size of the next:
    O(log n) chunks, and each byte is copied O(log n) times over the life of the index."""
    merged = list(chunks)
    while len(merged) > 1 and len(merged[-2].body) <= 2 * len(merged[-1].body):
        last = merged.pop()
        before = merged.pop()
        merged.append(Chunk(before.entries + last.entries, before.body + b"," + last.body))
    return tuple(merged)


def _body_length(chunks: tuple[Chunk, ...]) -> int:
    return sum(len(chunk.body) for chunk in chunks) + max(len(chunks) - 1, 0)


class Maps:
    """The lookup maps of one version of an index."""

    __slots__ = ("by_digest", "counts", "encoded", "tags", "untagged")

    def __init__(self, base: Maps | None = None) -> None:
        self.tags: Overlay[str, Entry] = base.tags.fork() if base else Overlay()
        self.by_digest: Overlay[str, Entry] = base.by_digest.fork() if base else Overlay()
        self.counts: Overlay[str, int] = base.counts.fork() if base else Overlay()  # per digest
        self.untagged: Overlay[str, Entry] = base.untagged.fork() if base else Overlay()
        # id(entry) -> its JSON, for rebuilding the array after a removal without encoding
        # every entry again (an entry read from a file is encoded when first needed)
        self.encoded: Overlay[int, bytes] = base.encoded.fork() if base else Overlay()

    def add(self, entry: Entry) -> None:
        """Index one entry by tag (or as untagged), by digest, and in the per-digest count."""
        digest = entry["digest"]
        tag = entry_tag(entry)
        if tag is None:
            if digest not in self.untagged:
                self.untagged[digest] = entry
        else:
            self.tags[tag] = entry
        if digest not in self.by_digest:
            self.by_digest[digest] = entry
        self.counts[digest] = self.counts.get(digest, 0) + 1

    def encoding(self, entry: Entry) -> bytes:
        piece = self.encoded.get(id(entry))
        if piece is None:
            piece = self.encoded[id(entry)] = _encode_entry(entry)
        return piece


class _Lookups:
    """The lookup maps of an index version or of an edit, by name."""

    maps: Maps

    @property
    def tags(self) -> Overlay[str, Entry]:
        return self.maps.tags

    @property
    def by_digest(self) -> Overlay[str, Entry]:
        return self.maps.by_digest

    @property
    def counts(self) -> Overlay[str, int]:
        return self.maps.counts

    @property
    def untagged(self) -> Overlay[str, Entry]:
        return self.maps.untagged


class RepoIndex(_Lookups):
    """One version of a repository's index, with its lookup maps. Never changed once built
    (its entries' encodings may be filled in)."""

    def __init__(
        self,
        entries: list[Entry] | None = None,
        generation: str | None = None,
        *,
        raw: bytes | None = None,
        chunks: tuple[Chunk, ...] | None = None,
        maps: Maps | None = None,
        run: str | None = None,
        removals: str | None = None,
    ) -> None:
        if entries is None and chunks is None:
            entries = []
        self.generation = generation
        self.raw = raw  # kept only for files without our generation token
        # The manifests array as chunks, when known (read from our own file, or kept while
        # appending); else it is encoded from the entries when needed.
        self.chunks = chunks
        self._entries = entries
        self.maps = maps if maps is not None else Maps()
        self.run = run  # RUN of the file this version is written as (None: no run known)
        self.removals = removals  # REMOVALS of the file (None: a file without one)
        self._sorted: list[str] | None = None

    @classmethod
    def from_entries(cls, entries: list[Entry], **extra: Any) -> RepoIndex:
        index = cls(entries, **extra)
        for entry in entries:
            index.maps.add(entry)
        return index

    @property
    def entries(self) -> list[Entry]:
        if self._entries is None:
            assert self.chunks is not None
            self._entries = [entry for chunk in self.chunks for entry in chunk.entries]
        return self._entries

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

    def body_chunks(self) -> tuple[Chunk, ...]:
        if self.chunks is None:
            entries = self.entries
            body = b",".join([self.maps.encoding(entry) for entry in entries])
            self.chunks = (Chunk(entries, body),) if entries else ()
        return self.chunks

    def manifests_body(self) -> bytes:
        return b",".join(chunk.body for chunk in self.body_chunks())

    def pieces(self) -> list[bytes]:
        """The file's bytes in pieces, the chunks as they are (joining them would copy)."""
        annotations = f'"{GENERATION}":"{self.generation}"'
        if self.run is not None:
            annotations += f',"{RUN}":"{self.run}"'
        if self.removals is not None:
            annotations += f',"{REMOVALS}":"{self.removals}"'
        head = f'{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","annotations":{{{annotations}}},'
        pieces = [head.encode() + _MANIFESTS]
        for position, chunk in enumerate(self.body_chunks()):
            pieces += [b",", chunk.body] if position else [chunk.body]
        pieces.append(_END)
        return pieces

    def encode(self) -> bytes:
        return b"".join(self.pieces())


class IndexEdit(_Lookups):
    """Changes to one index, applied to forks of its maps; its entries are copied only if
    something is removed."""

    def __init__(self, base: RepoIndex | None) -> None:
        self.base_stamp = base.stamp if base else None
        self.maps = Maps(base.maps if base else None)
        self._base_chunks: tuple[Chunk, ...] | None = base.chunks if base else ()
        self._base_entries: list[Entry] | None = None if base is None else base._entries
        self._base = base
        self._entries: list[Entry] | None = None  # all entries, once something was removed
        self._tail: list[Entry] = []  # appended, while nothing was removed
        self._tail_body: list[bytes] = []
        # While the edit only appends to a base whose array is known as bytes, the saved
        # version continues the base's run (see the module docstring).
        self._run = base.run if base is not None and base.chunks is not None else None
        # Blobs found in storage while this edit is made, which is under the repository lock
        # (see IndexCommits): GC and blob DELETE wait for that lock, so they stay found until
        # the edit is saved, and the pushes of one commit batch ask storage for each once.
        self.present: set[str] = set()
        self.base_removals = base.removals if base is not None else None
        # Set by what removes blob files (GC, blob DELETE) before it removes any: the saved
        # version gets a new removals token, so no process trusts what it found before.
        self.removes_blobs = False

    @property
    def entries(self) -> list[Entry]:
        if self._entries is not None:
            return self._entries
        base = self._base.entries if self._base is not None else []
        return base + self._tail

    def add_manifest(self, descriptor: Entry) -> None:
        """Record an untagged manifest unless the repository already lists it."""
        if descriptor["digest"] not in self.maps.counts:
            self._append(dict(descriptor))

    def set_tag(self, tag: str, descriptor: Entry) -> None:
        """Point ``tag`` at ``descriptor``. The manifest the tag left stays in the repository
        (untagged if nothing else tags it); an untagged entry of the new digest is absorbed."""
        current = self.maps.tags.get(tag)
        digest = descriptor["digest"]
        if current is not None and current["digest"] == digest:
            return
        if current is not None:
            self.remove_tag(tag)
        untagged = self.maps.untagged.get(digest)
        if untagged is not None:
            self._remove(untagged)
        tagged = dict(descriptor)
        tagged["annotations"] = {layout.REF_NAME: tag}
        self._append(tagged)

    def remove_tag(self, tag: str) -> None:
        """Remove a tag; the manifest stays in the repository, untagged if nothing else tags it."""
        entry = self.maps.tags.get(tag)
        if entry is None:
            return
        self._remove(entry)
        if entry["digest"] not in self.maps.counts:
            self._append({k: v for k, v in entry.items() if k != "annotations"})

    def remove_digest(self, digest: str) -> None:
        for entry in [e for e in self.entries if e["digest"] == digest]:
            self._remove(entry)

    def result(self, generation: str) -> RepoIndex:
        """The edited version, to be written as ``generation``."""
        index = self._result(generation)
        keep = self.base_removals is not None and not self.removes_blobs
        # a fresh token where the base had none: what was found under no token is not trusted
        index.removals = self.base_removals if keep else generation
        return index

    def _result(self, generation: str) -> RepoIndex:
        if self._entries is not None:  # something was removed: encoded anew, a new run
            return RepoIndex(self._entries, generation, maps=self.maps, run=generation)
        if self._base_chunks is None:  # the base's array is not known as bytes
            return RepoIndex(self.entries, generation, maps=self.maps, run=generation)
        chunks, entries = self._base_chunks, self._base_entries
        if self._tail:
            chunks = _merged((*chunks, Chunk(self._tail, b",".join(self._tail_body))))
            entries = None
        run = self._run if self._run is not None else generation
        return RepoIndex(entries, generation, chunks=chunks, maps=self.maps, run=run)

    def adopt(self, entries: list[Entry], body: bytes) -> None:
        """Append entries read from a file, ``body`` being their JSON as it is there."""
        for entry in entries:
            self._tail.append(entry)
            self.maps.add(entry)
        self._tail_body.append(body)

    def _append(self, entry: Entry) -> None:
        self.maps.add(entry)
        piece = self.maps.encoded[id(entry)] = _encode_entry(entry)
        if self._entries is not None:
            self._entries.append(entry)
        else:
            self._tail.append(entry)
            self._tail_body.append(piece)

    def _remove(self, entry: Entry) -> None:
        if self._entries is None:
            self._entries = self.entries
        position = next(i for i, e in enumerate(self._entries) if e is entry)
        del self._entries[position]
        maps = self.maps
        maps.encoded.pop(id(entry), None)
        digest = entry["digest"]
        tag = entry_tag(entry)
        if tag is not None and maps.tags.get(tag) is entry:
            del maps.tags[tag]
        if maps.untagged.get(digest) is entry:
            del maps.untagged[digest]
        maps.counts[digest] -= 1
        if maps.counts[digest] == 0:
            del maps.counts[digest]
            del maps.by_digest[digest]
        elif maps.by_digest[digest] is entry:
            maps.by_digest[digest] = next(e for e in self._entries if e["digest"] == digest)


# Told after each save: (repo, stamp before, stamp after); the meta DB follows the chain.
SaveListener = Callable[[str, str | None, str], None]


class IndexStore:
    def __init__(self, driver: StorageDriver) -> None:
        self._driver = driver
        self._cache: OrderedDict[str, RepoIndex] = OrderedDict()
        # repo -> (removals token, blobs found under the lock while the index had it), the
        # repository pushed to least recently first; _found_count: the blobs in it
        self._found: OrderedDict[str, tuple[str, frozenset[str]]] = OrderedDict()
        self._found_count = 0
        self._tracks_removals = driver.blob_check_is_request
        # the event loop and threads (meta DB sync, a commit batch of a large manifest) share it
        self._cache_lock = threading.Lock()
        self.listeners: list[SaveListener] = []

    def load(self, repo: str) -> RepoIndex | None:
        """The repository's index, or None when the repository does not exist."""
        with self._cache_lock:
            cached = self._cache.get(repo)
        try:
            # one open file: its head and the rest are of one version, whoever replaces it
            with self._driver.reader(layout.index_file(repo)) as handle:
                # _read goes back to the start when the file is not the cached run's (another
                # instance wrote it); a stream that cannot (an S3 body) is read whole first
                seekable = handle if handle.seekable() else io.BytesIO(handle.read())
                index = _read(seekable, cached)
        except PathNotFoundError:
            self.forget(repo)
            return None
        if index is cached:
            self._touch(repo)
        else:
            self._remember(repo, index)
        return index

    def edit(self, repo: str) -> IndexEdit:
        """Start changing ``repo``'s index; call only under the repository lock.

        The edit starts knowing the blobs that this process found in the repository under
        an earlier hold of the lock, when the index still has the removals token it had
        then: only GC and blob DELETE remove blob files from a repository, both under the
        lock, and both change the token in the index before they remove anything (in the
        same hold), so an unchanged token means nothing was removed since. A removed
        repository loses its index, and the one laid out anew gets a new token."""
        edit = IndexEdit(self.load(repo))
        with self._cache_lock:
            found = self._found.get(repo)
            if found is not None:
                self._found.move_to_end(repo)
        if found is not None and edit.base_removals is not None and found[0] == edit.base_removals:
            edit.present.update(found[1])
        return edit

    def save(self, repo: str, edit: IndexEdit, tell: bool = True) -> RepoIndex:
        """Write the edit's index; its listeners are told, unless ``tell`` is false (the
        caller then tells them with ``tell_saved``, in its order)."""
        index = edit.result(secrets.token_hex(16))
        if not self._tracks_removals:
            index.removals = None  # the file as before tokens: nothing to trust or change
        self._driver.put_pieces(layout.index_file(repo), index.pieces())
        self._remember(repo, index)
        found = set() if edit.removes_blobs else edit.present
        with self._cache_lock:
            self._forget_found(repo)
            if index.removals is not None and 0 < len(found) <= _FOUND_MOST:
                self._found[repo] = (index.removals, frozenset(found))
                self._found_count += len(found)
                while self._found_count > _FOUND_TOTAL:
                    self._forget_found(next(iter(self._found)))
        if tell:
            self.tell_saved(repo, edit.base_stamp, index.stamp)
        return index

    def tell_saved(self, repo: str, before: str | None, after: str) -> None:
        for listener in self.listeners:
            listener(repo, before, after)

    def found_before(self, repo: str) -> set[str]:
        """The blobs this process found in ``repo`` while its cached index had the token it
        still has (a copy; no request): a hint for a check made before the lock, which
        :meth:`edit`'s check under the lock confirms against the token in storage."""
        with self._cache_lock:
            found = self._found.get(repo)
            cached = self._cache.get(repo)
        if found is None or cached is None or cached.removals != found[0]:
            return set()
        return set(found[1])

    def save_before_removing_blobs(self, repo: str, index: RepoIndex | None) -> None:
        """Give the index a new removals token (see :meth:`edit`), before blob files of the
        repository are removed in the same hold of its lock; ``index``: its current version
        (None: the repository has no index, so no process can trust anything found). Nothing
        on a driver that keeps no token (see the module docstring)."""
        if index is not None and self._tracks_removals:
            edit = IndexEdit(index)
            edit.removes_blobs = True
            self.save(repo, edit)

    def holds(self, repo: str) -> bool:
        """Whether this process has read or written ``repo``'s index lately (it existed
        then; another instance may have removed it since)."""
        with self._cache_lock:
            return repo in self._cache

    def forget(self, repo: str) -> None:
        with self._cache_lock:
            self._cache.pop(repo, None)
            self._forget_found(repo)

    def _forget_found(self, repo: str) -> None:
        """Under ``_cache_lock``."""
        dropped = self._found.pop(repo, None)
        if dropped is not None:
            self._found_count -= len(dropped[1])

    def _touch(self, repo: str) -> None:
        with self._cache_lock:
            if repo in self._cache:
                self._cache.move_to_end(repo)

    def _remember(self, repo: str, index: RepoIndex) -> None:
        with self._cache_lock:
            self._cache[repo] = index
            self._cache.move_to_end(repo)
            while len(self._cache) > _CACHE_SIZE:
                evicted, _ = self._cache.popitem(last=False)
                self._forget_found(evicted)


def _read(handle: BinaryIO, cached: RepoIndex | None) -> RepoIndex:
    """The version in the open file: ``cached`` when it is that version, ``cached`` extended by
    the tail when the file continues its run, else the whole file parsed."""
    head = handle.read(_HEAD)
    match = _HEAD_RE.search(head)
    if match is None:  # another tool's file
        raw = head + handle.read()
        if cached is not None and cached.raw is not None and cached.raw == raw:
            return cached
        return RepoIndex.from_entries(_entries(json.loads(raw)), raw=raw)
    generation = match[1].decode()
    if cached is not None and cached.generation == generation:
        return cached  # the same version: its removals token too
    index = _read_ours(handle, cached, match, generation)
    index.removals = match[3].decode() if match[3] is not None else None
    return index


def _read_ours(
    handle: BinaryIO, cached: RepoIndex | None, match: re.Match[bytes], generation: str
) -> RepoIndex:
    """The version in a file with our generation token (whose head ``match`` read)."""
    head = match.string
    run = match[2].decode() if match[2] is not None else None
    found = head.find(_MANIFESTS, match.end())
    start = found + len(_MANIFESTS)
    if found >= 0 and run is not None and cached is not None and cached.run == run:
        extended = _extended(cached, generation, handle, start)
        if extended is not None:
            return extended
    handle.seek(0)
    raw = handle.read()
    if found < 0 or not raw.endswith(_END):  # our token, not our layout (edited by hand)
        return RepoIndex.from_entries(_entries(json.loads(raw)), raw=raw)
    document = json.loads(raw)
    entries = _entries(document)
    listed = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(listed, list) or len(listed) != len(entries):  # the bytes are not these
        return RepoIndex.from_entries(entries, generation=generation)
    body = raw[start : -len(_END)]
    chunks = (Chunk(entries, body),) if entries else ()
    return RepoIndex.from_entries(entries, generation=generation, chunks=chunks, run=run)


def _extended(base: RepoIndex, generation: str, handle: BinaryIO, start: int) -> RepoIndex | None:
    """The version in the file (whose manifests array begins at ``start``), which continues
    ``base``'s run: only what follows ``base``'s array is read and parsed. None when the file
    is not that (its bytes where ``base``'s array ends differ, or the tail does not parse)."""
    if base.chunks is None:
        return None
    length = _body_length(base.chunks)
    overlap = _last_bytes(base.chunks, _OVERLAP)
    handle.seek(start + length - len(overlap))
    rest = handle.read()
    if not rest.startswith(overlap) or not rest.endswith(_END):
        return None
    rest = rest[len(overlap) :]
    if rest == _END:  # nothing appended (a save that changed nothing)
        return RepoIndex(
            base._entries, generation, chunks=base.chunks, maps=base.maps, run=base.run
        )
    if length and not rest.startswith(b","):
        return None
    tail = rest[1 if length else 0 : -len(_END)]
    try:
        listed = json.loads(b"[" + tail + b"]")
    except ValueError:
        return None
    appended = _entries({"manifests": listed})
    if not appended or len(appended) != len(listed):
        return None
    edit = IndexEdit(base)
    edit.adopt(appended, tail)
    return edit.result(generation)


def _last_bytes(chunks: tuple[Chunk, ...], count: int) -> bytes:
    """The last ``count`` bytes (or fewer, if there are not that many) of the array."""
    pieces: list[bytes] = []
    size = 0
    for position, chunk in enumerate(reversed(chunks)):
        if position:
            pieces.append(b",")
        pieces.append(chunk.body)
        size += len(chunk.body)
        if size >= count:
            break
    return b"".join(reversed(pieces))[-count:] if count else b""


def _entries(document: Any) -> list[Entry]:
    manifests = document.get("manifests") if isinstance(document, dict) else None
    if not isinstance(manifests, list):
        return []
    return [m for m in manifests if isinstance(m, dict) and "digest" in m]
