"""Garbage collection of one repository: what nothing needs any more, once it is old enough.

Under the repository lock (the one manifest pushes and mounts take), in this order:

1. manifests, until nothing more changes: an untagged manifest that no index in the
   repository lists and that has no subject, and a referrer whose subject is not in the
   repository (a referrer may be pushed before its subject, so it too must be old enough);
2. blobs that no remaining manifest references (manifests themselves, configs, layers);
3. upload sessions nobody has written to for ``delay`` seconds;
4. the repository itself, when nothing is left in it (no manifest, blob or upload session):
   its layout files and empty folders go (and empty parent folders that are no repository),
   and observers are told, so the catalog stops listing it. A push or mount that still
   counted on it lays it out again under the same lock (see ``Registry``).

"Old enough" means the file was last modified more than ``delay`` (``storage.gcDelay``) ago. A
pushed blob is new until a manifest references it; a mounted blob or one pushed again is
touched, so it is new as well. Pushes check what their manifest references under the same lock,
so GC never removes something a manifest it has not seen yet needs.

The work under the lock runs in one worker thread per repository (it reads every manifest,
stats and deletes files: on S3 each a request, on a disk a walk of thousands of files), which
the lock waits for even when the task is cancelled. Observers are told on the event loop once
it is done, still under the lock.

With ``preview`` (``ocireg gc --dry-run``) nothing changes: each step works on a copy of the
index, and the result lists what a real run would remove, with sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from ocireg.digests import parse_digest
from ocireg.errors import RegistryError
from ocireg.logs import event
from ocireg.meta.db import MetaDB
from ocireg.registry import layout
from ocireg.registry.index import IndexEdit, RepoIndex
from ocireg.registry.offloop import run_storage_work
from ocireg.registry.retention import policy_for, tag_decisions, untagged_kept
from ocireg.registry.store import Registry
from ocireg.storage.driver import FileInfo, PathNotFoundError

if TYPE_CHECKING:  # imported only when a configuration has retention (ocireg.sections)
    from ocireg.retentionconfig import RetentionConfig, RetentionPolicy

log = logging.getLogger("ocireg.gc")
_PREVIEW = "0" * 32  # the generation of an index a preview edits, never saved


@dataclass(frozen=True)
class Removed:
    """One file GC removed (or, in a preview, would remove), as it was just before."""

    kind: str  # "blob" or "upload"
    name: str  # the blob's digest, the upload session's id
    size: int
    links: int  # names the content had (hard links: mounts, the dedupe store)
    mod_time: float


# What the locked work leaves to tell on the event loop, in order: an index saved (to the
# index's listeners: the meta DB's stamps), its tags untagged and manifests deleted (to the
# observers), upload sessions removed (to the upload store)
Told = list[Callable[[], None]]


@dataclass
class Collected:
    repo: str
    tags: list[str] = field(default_factory=list)  # removed by retention
    manifests: list[str] = field(default_factory=list)
    manifest_sizes: dict[str, int] = field(default_factory=dict)
    blobs: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    files: list[Removed] = field(default_factory=list)  # the blobs' and uploads' files
    repository_removed: bool = False

    @property
    def total(self) -> int:
        return len(self.tags) + len(self.manifests) + len(self.blobs) + len(self.uploads)


class GarbageCollector:
    def __init__(
        self,
        registry: Registry,
        delay: float,
        clock: Callable[[], float] = time.time,
        retention: RetentionConfig | None = None,
        meta: MetaDB | None = None,
        preview: bool = False,
    ) -> None:
        self.registry = registry
        self.preview = preview
        self.delay = delay
        self.clock = clock
        self.retention = retention if retention and retention.policies else None
        self.meta = meta
        # Told about every run: what went, how long it took, what failed (metrics listen).
        self.listeners: list[Callable[[Collected, float, BaseException | None], None]] = []

    async def collect(self, repo: str) -> Collected:
        result, started, error = Collected(repo), time.perf_counter(), None
        try:
            return await self._collect(repo, result)
        except Exception as exc:
            error = exc
            raise
        finally:
            for listener in self.listeners:
                listener(result, time.perf_counter() - started, error)

    async def _collect(self, repo: str, result: Collected) -> Collected:
        policy = policy_for(self.retention, repo) if self.meta is not None else None
        async with self.registry.locks.hold(repo):
            told: Told = []
            try:
                await run_storage_work(True, self._collect_locked, repo, policy, result, told)
            finally:  # what was saved is told, even when a later step failed
                self._tell(told)
        if result.repository_removed and not self.preview:
            for observer in self.registry.observers:
                await asyncio.to_thread(observer.removed, repo)
        event(
            log,
            logging.INFO,
            "gc done",
            repo=repo,
            tags=result.tags,
            manifests=result.manifests,
            blobs=len(result.blobs),
            uploads=len(result.uploads),
            removedRepository=result.repository_removed,
            preview=self.preview,
        )
        return result

    def _collect_locked(
        self, repo: str, policy: RetentionPolicy | None, result: Collected, told: Told
    ) -> None:
        """The work under the repository's lock (in a worker thread; see the docstring); what
        is to be told after it goes in ``told``."""
        index = self.registry.indexes.load(repo)
        if index is not None:
            if policy is not None:
                index = self._retain_tags(repo, index, policy, result, told)
            index = self._manifests(repo, index, result, policy, told)
            self._blobs(repo, index, result)
        self._uploads(repo, result, told)
        if index is not None and not index.entries and self._empty(repo, result):
            result.repository_removed = True
            if not self.preview:
                self._remove_repository(repo)

    def _tell(self, told: Told) -> None:
        for tell in told:
            tell()

    def _save(self, repo: str, edit: IndexEdit, told: Told) -> RepoIndex:
        """Save the index, its listeners told with the rest (``_tell``): a stamp that went
        ahead of the observers' news could outlive it in a crash."""
        index = self.registry.indexes.save(repo, edit, tell=False)
        told.append(partial(self.registry.indexes.tell_saved, repo, edit.base_stamp, index.stamp))
        return index

    def _observed(self, repo: str, kind: str, names: list[str]) -> Callable[[], None]:
        def tell() -> None:
            for observer in self.registry.observers:
                for name in names:
                    if kind == "untagged":
                        observer.untagged(repo, name)
                    else:
                        observer.deleted(repo, name)

        return tell

    def _empty(self, repo: str, result: Collected) -> bool:
        """Whether nothing is left in the repository's blobs and uploads (in a preview: but
        what the run would remove)."""
        driver, gone = self.registry.driver, {file.name for file in result.files}
        for folder in driver.children(layout.blobs_dir(repo)):
            algorithm = folder.rsplit("/", 1)[-1]
            for path in driver.children(folder):
                if f"{algorithm}:{path.rsplit('/', 1)[-1]}" not in gone:
                    return False
        uploads = driver.children(layout.uploads_dir(repo))
        return all(path.rsplit("/", 1)[-1] in gone for path in uploads)

    def _remove_repository(self, repo: str) -> None:
        """Remove an empty repository's layout, then each folder that is left empty, up to
        the root. A folder that is not empty (something arrived meanwhile) stays."""
        driver = self.registry.driver
        for path in (layout.index_file(repo), layout.layout_file(repo)):
            with contextlib.suppress(PathNotFoundError):
                driver.delete(path)
        self.registry.indexes.forget(repo)
        for folder in driver.children(layout.blobs_dir(repo)):
            driver.remove_empty_dir(folder)
        driver.remove_empty_dir(layout.blobs_dir(repo))
        driver.remove_empty_dir(layout.uploads_dir(repo))
        folder = repo
        while folder and driver.remove_empty_dir(folder):
            folder = folder.rpartition("/")[0]

    @property
    def dry_run(self) -> bool:
        return self.retention is not None and self.retention.dryRun

    def _old(self, path: str, delay: float | None = None) -> bool:
        return self._old_file(path, delay) is not None

    def _old_file(self, path: str, delay: float | None = None) -> FileInfo | None:
        """The file's details when it is older than ``delay`` (``gcDelay``), else None."""
        driver = self.registry.driver
        try:
            info = driver.stat(path)
        except PathNotFoundError:
            # gone meanwhile, or a placeholder whose content is gone (removed by hand, say):
            # that one reads as unknown (404), and is aged and collected by its own details
            try:
                info = driver.own_stat(path)
            except PathNotFoundError:
                return None
        age = self.clock() - info.mod_time
        return info if age > (self.delay if delay is None else delay) else None

    def _manifest_old(self, repo: str, digest: str) -> bool:
        delay = self.retention.delay if self.retention else None
        try:
            return self._old(layout.blob_file(repo, parse_digest(digest)), delay)
        except RegistryError:
            return True  # an entry whose digest we cannot read is garbage once seen

    def _retain_tags(
        self, repo: str, index: RepoIndex, policy: RetentionPolicy, result: Collected, told: Told
    ) -> RepoIndex:
        assert self.meta is not None
        tags = {tag: entry["digest"] for tag, entry in index.tags.items()}
        decisions = tag_decisions(policy, self.meta, repo, tags, self.clock)
        for decision in decisions:
            event(
                log,
                logging.INFO,
                "retention",
                repo=repo,
                tag=decision.tag,
                digest=decision.digest,
                decision="keep" if decision.keep else "delete",
                reason=decision.reason,
                dryRun=self.dry_run,
            )
        doomed = [d.tag for d in decisions if not d.keep]
        if not doomed or self.dry_run:
            return index
        edit = IndexEdit(index)
        for tag in doomed:
            edit.remove_tag(tag)
        result.tags += doomed
        if self.preview:
            return edit.result(_PREVIEW)
        index = self._save(repo, edit, told)
        told.append(self._observed(repo, "untagged", doomed))
        return index

    def _manifests(
        self,
        repo: str,
        index: RepoIndex,
        result: Collected,
        policy: RetentionPolicy | None,
        told: Told,
    ) -> RepoIndex:
        while True:
            doomed = self._doomed_manifests(repo, index, policy)
            if doomed and self.dry_run:
                event(
                    log,
                    logging.INFO,
                    "retention",
                    repo=repo,
                    untagged=doomed,
                    decision="delete",
                    reason="untagged or orphan referrer",
                    dryRun=True,
                )
                return index
            if not doomed:
                return index
            edit = IndexEdit(index)
            for digest in doomed:
                result.manifest_sizes[digest] = int(index.by_digest[digest].get("size") or 0)
                edit.remove_digest(digest)
            result.manifests += doomed
            if self.preview:
                index = edit.result(_PREVIEW)
                continue
            index = self._save(repo, edit, told)
            told.append(self._observed(repo, "deleted", doomed))

    def _doomed_manifests(
        self, repo: str, index: RepoIndex, policy: RetentionPolicy | None
    ) -> list[str]:
        parsed = {d: self.registry.parsed_manifest(repo, d) for d in index.by_digest}
        listed = {
            str(child.digest)
            for manifest in parsed.values()
            if manifest is not None
            for child in manifest.manifests
        }
        tagged = {entry["digest"] for entry in index.tags.values()}
        untagged, orphans = [], []
        for digest, manifest in parsed.items():
            if digest in tagged or digest in listed or not self._manifest_old(repo, digest):
                continue
            subject = manifest.subject if manifest is not None else None
            if subject is None:
                untagged.append(digest)
            elif str(subject.digest) not in index.by_digest:
                orphans.append(digest)  # a referrer of something absent
        if policy is None:  # without a policy, as zot's default: both go
            return untagged + orphans
        assert self.meta is not None
        kept = untagged_kept(policy, self.meta, repo, untagged, self.clock())
        return [d for d in untagged if d not in kept] + (orphans if policy.deleteReferrers else [])

    def _referenced(self, repo: str, index: RepoIndex) -> set[str] | None:
        """Every blob the repository's manifests reference; None when one of them cannot be
        read, since then nobody knows which blobs it needs."""
        keep = set(index.by_digest)
        for digest in index.by_digest:
            manifest = self.registry.parsed_manifest(repo, digest)
            if manifest is None:
                event(log, logging.WARNING, "gc kept every blob", repo=repo,
                      reason=f"manifest {digest} cannot be read")  # fmt: skip
                return None
            blobs = [manifest.config, *manifest.layers] if manifest.config else manifest.layers
            keep.update(str(descriptor.digest) for descriptor in blobs)
        return keep

    def _blobs(self, repo: str, index: RepoIndex, result: Collected) -> None:
        keep = self._referenced(repo, index)
        if keep is None:
            return
        driver = self.registry.driver
        marked = False
        for folder in driver.children(layout.blobs_dir(repo)):
            algorithm = folder.rsplit("/", 1)[-1]
            for path in driver.children(folder):
                digest = f"{algorithm}:{path.rsplit('/', 1)[-1]}"
                info = None if digest in keep else self._old_file(path)
                if info is None:
                    continue
                if not self.preview:
                    if not marked:  # before the first removal: pushes stop trusting finds
                        self.registry.indexes.save_before_removing_blobs(repo, index)
                        marked = True
                    try:
                        driver.delete(path)
                    except PathNotFoundError:
                        continue
                result.blobs.append(digest)
                result.files.append(_removed("blob", digest, info))

    def _uploads(self, repo: str, result: Collected, told: Told) -> None:
        driver = self.registry.driver
        for path in driver.children(layout.uploads_dir(repo)):
            info = self._old_file(path)
            if info is not None:
                session = path.rsplit("/", 1)[-1]
                if not self.preview:
                    try:
                        driver.delete(path)
                    except PathNotFoundError:
                        continue
                    told.append(partial(self.registry.uploads.forget, repo, session))
                result.uploads.append(session)
                result.files.append(_removed("upload", session, info))


def _removed(kind: str, name: str, info: FileInfo) -> Removed:
    return Removed(kind, name, info.size, info.links, info.mod_time)
