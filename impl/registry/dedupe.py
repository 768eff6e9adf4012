"""Dedupe: identical blobs across repositories share one file.

The digest index is a content-addressed store under the root, ``.ocireg/blobs/<alg>/<hex>``:
with ``storage.dedupe`` on, every committed blob is also linked there, and a blob committed
again in any repository becomes a hard link to that one file instead of a second copy. Each
repository keeps its own name for the content, so its OCI layout stays complete and GC in one
repository only removes that repository's name; :meth:`Dedupe.sweep` then drops store entries
no repository names any more.

Switching ``storage.dedupe`` converts existing storage in the background, once, recorded in
``.ocireg/dedupe.json``: on, every repository blob is linked with the store; off, every shared
blob gets its own copy again and the store is removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from ocireg.digests import Digest
from ocireg.logs import event
from ocireg.registry import layout
from ocireg.registry.locks import try_exclusive
from ocireg.storage.driver import FileInfo, PathNotFoundError, StorageDriver, join

log = logging.getLogger("ocireg.dedupe")
STORE = join(layout.META_DIR, "blobs")
_COPY_CHUNK = 1 << 20


def store_file(digest: Digest) -> str:
    return join(STORE, digest.algorithm, digest.encoded)


class Dedupe:
    def __init__(self, driver: StorageDriver, enabled: bool) -> None:
        self.driver = driver
        self.enabled = enabled

    def has(self, digest: Digest) -> bool:
        return self.enabled and self.driver.exists(store_file(digest))

    def adopt(self, target: str, digest: Digest) -> bool:
        """Make ``target`` a link to the stored copy of ``digest``, if there is one."""
        if not self.enabled:
            return False
        try:
            self.driver.link(store_file(digest), target)
        except PathNotFoundError:
            return False
        return True

    def record(self, path: str, digest: Digest) -> None:
        """Link a newly committed blob into the store, unless the store has it already."""
        if self.enabled and not self.driver.exists(store_file(digest)):
            with contextlib.suppress(PathNotFoundError):
                self.driver.link(path, store_file(digest))

    def sweep(
        self,
        delay: float,
        now: Callable[[], float] = time.time,
        unnamed: Callable[[FileInfo], bool] | None = None,
    ) -> list[FileInfo]:
        """Remove store entries that no repository names any more, once older than
        ``delay``; what they were. With ``unnamed`` (a preview), nothing is removed: it says
        which entries a run would leave unnamed, and those are listed."""
        removed = []
        for path in _files(self.driver, STORE):
            try:
                info = self.driver.stat(path)
            except PathNotFoundError:
                continue
            alone = info.links == 1 if unnamed is None else unnamed(info)
            if not alone or now() - info.mod_time <= delay:
                continue
            if unnamed is not None:
                removed.append(info)
                continue
            with contextlib.suppress(PathNotFoundError):
                self.driver.delete(path)
                removed.append(info)
        return removed

    # -- conversion -------------------------------------------------------------------------
    def convert(self, repositories: list[str], marker: Path) -> int:
        """Bring existing storage to the configured mode; returns blobs changed. Blocking."""
        with try_exclusive(marker.with_suffix(".lock")) as ours:
            if not ours or _recorded(marker) == self.enabled:
                return 0
            changed = 0
            for repo, digest, path in self._repository_blobs(repositories):
                changed += self._share(path, digest) if self.enabled else self._unshare(repo, path)
            if not self.enabled:
                with contextlib.suppress(PathNotFoundError):
                    self.driver.delete(STORE)
            marker.write_text(json.dumps({"dedupe": self.enabled}))
        event(log, logging.INFO, "dedupe conversion done", dedupe=self.enabled, blobs=changed)
        return changed

    def _repository_blobs(self, repositories: list[str]) -> Iterator[tuple[str, Digest, str]]:
        for repo in repositories:
            for folder in self.driver.children(layout.blobs_dir(repo)):
                algorithm = folder.rsplit("/", 1)[-1]
                for path in self.driver.children(folder):
                    yield repo, Digest(algorithm, path.rsplit("/", 1)[-1]), path

    def _share(self, path: str, digest: Digest) -> int:
        if self.driver.exists(store_file(digest)):
            self.driver.link(store_file(digest), path)  # atomic replace by an equal file
        else:
            self.driver.link(path, store_file(digest))
        return 1

    def _unshare(self, repo: str, path: str) -> int:
        if self.driver.stat(path).links <= 1:
            return 0
        temp = join(layout.uploads_dir(repo), f"unshare-{uuid.uuid4().hex}")
        with self.driver.reader(path) as source, self.driver.writer(temp) as copy:
            while chunk := source.read(_COPY_CHUNK):
                copy.write(chunk)
            copy.commit()
        self.driver.move(temp, path)
        return 1


def _recorded(marker: Path) -> bool | None:
    try:
        value = json.loads(marker.read_text()).get("dedupe")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, bool) else None


def _files(driver: StorageDriver, root: str) -> Iterator[str]:
    for folder in driver.children(root):
        yield from driver.children(folder)
