"""Dedupe by reference, on s3 roots (an object store has no hard links).

One object holds a digest's bytes: the content store ``.ocireg/blobs/<alg>/<hex>`` under the
root (the bucket's prefix), the same place as the filesystem's dedupe store. Every repository
that commits the digest (upload, cross-repository mount) gets a zero-byte *placeholder* at its
own layout path ``<repo>/blobs/<alg>/<hex>``, and the dedupe index in the meta DB
(:mod:`.dedupeindex`) records the content's path and which repositories reference it.

Why a content store and not the first repository's blob path (zot's choice): every repository's
layout is then uniform (a placeholder per blob, whoever came first), deleting a blob from the
first repository needs no hand-over of the content to another one, and GC of a repository only
ever deletes its own placeholders; the content goes in one place, the sweep.

Order of writes, so that a crash at any point loses nothing referenced:

1. the content object exists (the upload is moved there, or another object copied there);
2. the reference row is committed;
3. the placeholder is written (a zero-byte PUT: atomic, and it renews the name's age for GC).

A placeholder therefore always has its row and its content. GC deletes a placeholder first and
its row afterwards; a row left by a crash in between (or between 2 and 3) only keeps content
alive, and the sweep drops such rows once older than ``gcDelay``. The sweep removes a content
object only when no repository references it and it is older than ``gcDelay``. Commits, mounts,
the conversion and the sweep of one digest hold the digest's lock (flock, and the PostgreSQL
advisory lock across instances), so a sweep never removes content a commit is referencing.

Readers resolve placeholders (:class:`PlaceholderDriver`): a zero-byte object at a blob path is
read from the content store, so a placeholder never leaks as an empty body. (The empty blob is
zero bytes either way.) If the content were missing, the blob reads as unknown (404), never as
empty.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ocireg.digests import Digest, digest_bytes
from ocireg.logs import event
from ocireg.registry import layout
from ocireg.registry.dedupe import STORE, store_file
from ocireg.registry.dedupeindex import DedupeIndex
from ocireg.registry.locks import KeyedLocks
from ocireg.storage.driver import FileInfo, FileWriter, PathNotFoundError, StorageDriver, join
from ocireg.storage.socketbody import SocketBody

log = logging.getLogger("ocireg.dedupe")
MARKER = join(layout.META_DIR, "dedupe.json")  # in the bucket: every instance reads one
# Content sizes remembered per process (a bound on memory, not a rule: about 6 MiB at most),
# the least recently learnt forgotten first.
SIZES_KEPT = 65536


def blob_digest(path: str) -> tuple[str, Digest] | None:
    """(repository, digest) when ``path`` is a repository's blob file, else None."""
    head, sep, tail = path.rpartition(f"/{layout.BLOBS}/")
    if not sep or not head or head.split("/", 1)[0] == layout.META_DIR:
        return None
    algorithm, slash, encoded = tail.partition("/")
    if not slash or not algorithm or not encoded or "/" in encoded:
        return None
    return head, Digest(algorithm, encoded)


def _empty_content(digest: Digest) -> bool:
    try:
        return digest_bytes(b"", digest.algorithm) == digest
    except ValueError:  # an algorithm we do not hash: it is not the empty blob we know
        return False


class ReferenceDedupe:
    """The dedupe of an s3 root. ``enabled`` (``storage.dedupe``) decides whether commits
    share content; placeholders are resolved and references dropped either way, since
    storage may hold them from when it was on (until the conversion has copied them back)."""

    def __init__(
        self,
        driver: StorageDriver,
        index: DedupeIndex,
        locks: KeyedLocks,
        store: str,
        enabled: bool,
    ) -> None:
        self.driver = driver  # the bucket itself, placeholders unresolved
        self.index = index
        self.locks = locks
        self.store = store
        self.enabled = enabled
        # the root's repositories (the registry sets it): the sweep looks for placeholders
        self.repositories: Callable[[], list[str]] = list
        self._sizes: dict[str, int] = {}  # digest -> its content's size (see content_size)
        self._sizes_lock = threading.Lock()

    def content_size(self, digest: Digest) -> int | None:
        """The size of ``digest``'s content as this process last learnt it, or None.

        Why it may be trusted without asking the bucket: a digest names its bytes, so the
        size never changes, and a placeholder always has its content (the order of writes
        above), so a reader that found a repository's placeholder needs no HEAD of the
        content as well: a blob GET on s3 is then two requests, not three. Content removed
        by hand anyway reads as unknown, from the GET's own 404."""
        return self._sizes.get(str(digest))

    def learn_size(self, digest: Digest, size: int) -> None:
        key = str(digest)
        with self._sizes_lock:
            self._sizes.pop(key, None)
            self._sizes[key] = size
            while len(self._sizes) > SIZES_KEPT:
                del self._sizes[next(iter(self._sizes))]

    def has(self, digest: Digest) -> bool:
        return self.enabled and self.driver.exists(store_file(digest))

    def _lock(self, digest: Digest) -> contextlib.AbstractContextManager[None]:
        return self.locks.hold_blocking(f"dedupe-content:{digest}")

    # -- references -------------------------------------------------------------------------
    def take(self, repo: str, digest: Digest, source: str | None, move: bool) -> bool:
        """Make ``repo`` reference ``digest``: its content is stored from ``source`` unless
        the store has it (``move``: ``source`` is an upload, moved; otherwise copied), then the
        reference is recorded and the placeholder written. False when the content is neither
        stored nor in ``source``. Blocking; the caller holds the repository's lock, so GC of
        ``repo`` cannot take the placeholder away meanwhile."""
        content = store_file(digest)
        with self._lock(digest):
            try:
                size = self.driver.stat(content).size
            except PathNotFoundError:
                if source is None or not self._holds_bytes(source, digest):
                    return False
                (self.driver.move if move else self.driver.link)(source, content)
                size = self.driver.stat(content).size
            self.index.refer(self.store, str(digest), repo, content, size)
            self.driver.put_content(layout.blob_file(repo, digest), b"")
        self.learn_size(digest, size)
        return True

    def _holds_bytes(self, path: str, digest: Digest) -> bool:
        """Whether ``path`` is the content itself, not a placeholder (or nothing)."""
        try:
            return self.driver.stat(path).size > 0 or _empty_content(digest)
        except PathNotFoundError:
            return False

    # The hard-link dedupe's steps of a commit; with dedupe on, a commit here is :meth:`take`,
    # and with it off no content is shared (``has`` is False), so these are never asked.
    def adopt(self, target: str, digest: Digest) -> bool:
        return False

    def record(self, path: str, digest: Digest) -> None:
        return None

    def dropped(self, repo: str, digest: Digest) -> None:
        """``repo``'s placeholder (or copy) of ``digest`` was deleted."""
        self.index.drop(self.store, str(digest), repo)

    # -- GC ---------------------------------------------------------------------------------
    def sweep(
        self,
        delay: float,
        now: Callable[[], float] = time.time,
        unnamed: Callable[[FileInfo], bool] | None = None,
    ) -> list[FileInfo]:
        """Remove content that no repository references any more, once older than ``delay``;
        what was removed. A reference whose placeholder is gone (a crash between GC's two
        steps) is dropped once older than ``delay``. With ``unnamed`` (a preview) nothing
        changes: the content a run would remove now is listed.

        The index is not trusted alone: before content goes, the repositories' blob folders
        are listed, and a placeholder of the digest anywhere (one the index lacks: a meta DB
        lost, or another instance's local one) is recorded as the reference it is."""
        change = unnamed is None
        candidates = []
        for path in _files(self.driver, STORE):
            digest = Digest(*path.rsplit("/", 2)[-2:])
            with self._lock(digest):
                if self._unreferenced(digest, path, delay, now(), change) is not None:
                    candidates.append((digest, path))
        named = self._named({digest for digest, _ in candidates}) if candidates else {}
        removed = []
        for digest, path in candidates:
            with self._lock(digest):  # again: a commit may have referenced it meanwhile
                if named.get(digest):
                    if change:
                        self._rerecord(digest, path, named[digest])
                    continue
                info = self._unreferenced(digest, path, delay, now(), change)
                if info is None:
                    continue
                if change:
                    with contextlib.suppress(PathNotFoundError):
                        self.driver.delete(path)
                    self.index.forget(self.store, str(digest))
            removed.append(info)
        return removed

    def _named(self, digests: set[Digest]) -> dict[Digest, list[str]]:
        """The repositories holding a placeholder of each of ``digests`` (a copy of its
        own, from before dedupe or a manifest stored whole, needs no content)."""
        named: dict[Digest, list[str]] = {}
        for repo, digest, path in _repository_blobs(self.driver, self.repositories()):
            if digest in digests and not self._holds_bytes(path, digest):
                named.setdefault(digest, []).append(repo)
        return named

    def _rerecord(self, digest: Digest, path: str, repositories: list[str]) -> None:
        try:
            size = self.driver.stat(path).size
        except PathNotFoundError:
            return
        for repo in repositories:
            self.index.refer(self.store, str(digest), repo, path, size)

    def _unreferenced(
        self, digest: Digest, path: str, delay: float, now: float, change: bool
    ) -> FileInfo | None:
        for repo, added in self.index.holders(self.store, str(digest)).items():
            if self.driver.exists(layout.blob_file(repo, digest)) or now - added <= delay:
                return None
            if change:
                self.index.drop(self.store, str(digest), repo)
        try:
            info = self.driver.stat(path)
        except PathNotFoundError:
            return None
        return info if now - info.mod_time > delay else None

    # -- conversion -------------------------------------------------------------------------
    def convert(self, repositories: list[str], marker: Path | None = None) -> int:
        """Bring existing storage to the configured mode, once (recorded in the bucket, at
        ``.ocireg/dedupe.json``); returns blobs changed. Blocking. On: each repository's own
        copy moves to the content store (or is dropped, the store having it) and becomes a
        placeholder. Off: each placeholder becomes a copy of the content again, then the
        store goes. ``marker`` (the filesystem's local record) is not used: the bucket holds
        the record, which every instance sharing it reads."""
        if _recorded(self.driver) == self.enabled:
            return 0
        changed = 0
        for repo, digest, path in _repository_blobs(self.driver, repositories):
            changed += (
                self._share(repo, digest, path)
                if self.enabled
                else self._unshare(repo, digest, path)
            )
        if not self.enabled:
            # what no placeholder names any more; a placeholder written meanwhile (another
            # instance not restarted yet) keeps its content
            self.sweep(0.0)
        self.driver.put_content(MARKER, json.dumps({"dedupe": self.enabled}).encode())
        event(log, logging.INFO, "dedupe conversion done", dedupe=self.enabled, blobs=changed)
        return changed

    def _share(self, repo: str, digest: Digest, path: str) -> int:
        # under the repository's lock, as a commit: GC of ``repo`` cannot delete the copy
        # between the look and the take, nor see a placeholder written after it collected
        with self.locks.hold_blocking(repo):
            try:
                if self.driver.stat(path).size == 0:
                    return 0  # a placeholder already
            except PathNotFoundError:
                return 0
            return 1 if self.take(repo, digest, path, move=False) else 0

    def _unshare(self, repo: str, digest: Digest, path: str) -> int:
        with self._lock(digest):
            try:
                if self.driver.stat(path).size > 0 or _empty_content(digest):
                    return 0
                self.driver.link(store_file(digest), path)  # an atomic replace on s3
            except PathNotFoundError:
                return 0
            self.index.drop(self.store, str(digest), repo)
        return 1


def _recorded(driver: StorageDriver) -> bool | None:
    try:
        value = json.loads(driver.get_content(MARKER)).get("dedupe")
    except (PathNotFoundError, ValueError, AttributeError):
        return None
    return value if isinstance(value, bool) else None


def _repository_blobs(
    driver: StorageDriver, repositories: Iterable[str]
) -> Iterator[tuple[str, Digest, str]]:
    for repo in repositories:
        for folder in driver.children(layout.blobs_dir(repo)):
            algorithm = folder.rsplit("/", 1)[-1]
            for path in driver.children(folder):
                yield repo, Digest(algorithm, path.rsplit("/", 1)[-1]), path


def _files(driver: StorageDriver, root: str) -> Iterator[str]:
    for folder in driver.children(root):
        yield from driver.children(folder)


class PlaceholderDriver(StorageDriver):
    """The bucket as the registry layer reads it: a placeholder at a repository's blob path
    reads as its content. Writes go to the bucket as they are; deleting a blob file drops the
    repository's reference after the file is gone."""

    def __init__(self, inner: StorageDriver, dedupe: ReferenceDedupe) -> None:
        self.inner = inner
        self.dedupe = dedupe
        self.name = inner.name
        self.move_renews_mtime = inner.move_renews_mtime
        self.blob_check_is_request = inner.blob_check_is_request

    def resolve(self, path: str) -> tuple[str, FileInfo]:
        """Where ``path``'s bytes are (the content store for a placeholder) and the file's
        details: the content's size, the name's own modification time (GC ages names)."""
        info = self.inner.stat(path)
        named = blob_digest(path) if info.size == 0 and not info.is_dir else None
        if named is None:
            return path, info
        digest = named[1]
        content = store_file(digest)
        size = self.dedupe.content_size(digest)
        if size is None:
            try:
                size = self.inner.stat(content).size
            except PathNotFoundError:
                if _empty_content(digest):
                    return path, info  # the empty blob, stored as itself
                raise PathNotFoundError(path) from None
            self.dedupe.learn_size(digest, size)
        return content, FileInfo(path, size, info.mod_time, False, 2)

    def get_content(self, path: str) -> bytes:
        data = self.inner.get_content(path)
        if data or blob_digest(path) is None:
            return data
        return self.inner.get_content(self.resolve(path)[0])

    def put_content(self, path: str, data: bytes) -> None:
        self.inner.put_content(path, data)

    def put_new_content(self, path: str, data: bytes) -> bool:
        # the inner driver's own (on s3 one conditional PutObject), not the base class's
        # check-then-write: a manifest's blob is never a placeholder, so nothing to resolve
        return self.inner.put_new_content(path, data)

    def put_pieces(self, path: str, pieces: Iterable[bytes]) -> None:
        self.inner.put_pieces(path, pieces)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        if blob_digest(path) is not None:
            path = self.resolve(path)[0]
        return self.inner.reader(path, offset)

    def socket_body(self, path: str, offset: int, length: int) -> SocketBody | None:
        if blob_digest(path) is not None:  # as reader: a placeholder's content
            path = self.resolve(path)[0]
        return self.inner.socket_body(path, offset, length)

    def writer(self, path: str, append: bool = False) -> FileWriter:
        return self.inner.writer(path, append)

    def stat(self, path: str) -> FileInfo:
        return self.resolve(path)[1]

    def own_stat(self, path: str) -> FileInfo:
        return self.inner.stat(path)

    def exists(self, path: str) -> bool:
        # a placeholder's content exists: it is stored before the placeholder is written
        return self.inner.exists(path)

    def list(self, path: str) -> builtins.list[str]:
        return self.inner.list(path)

    def move(self, source: str, dest: str) -> None:
        self.inner.move(source, dest)
        self._dropped(source)

    def delete(self, path: str) -> None:
        self.inner.delete(path)
        self._dropped(path)

    def _dropped(self, path: str) -> None:
        named = blob_digest(path)
        if named is not None:
            self.dedupe.dropped(*named)

    def link(self, source: str, dest: str) -> None:
        self.inner.link(self.resolve(source)[0] if blob_digest(source) else source, dest)

    def touch(self, path: str) -> None:
        self.inner.touch(path)

    def remove_empty_dir(self, path: str) -> bool:
        return self.inner.remove_empty_dir(path)

    def redirect_url(self, path: str, method: str) -> str | None:
        if blob_digest(path) is not None:
            path = self.resolve(path)[0]
        return self.inner.redirect_url(path, method)

    def local_path(self, path: str) -> Path | None:
        return None if blob_digest(path) is not None else self.inner.local_path(path)

    def sweep_temporary(self, max_age: float) -> int:
        return self.inner.sweep_temporary(max_age)


def resolve(driver: StorageDriver, path: str) -> tuple[str, FileInfo]:
    """Where a blob file's bytes are, and its details, whatever the driver."""
    if isinstance(driver, PlaceholderDriver):
        return driver.resolve(path)
    return path, driver.stat(path)
