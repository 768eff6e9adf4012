"""Registry semantics over a storage driver: repositories, blobs, manifests, tags, referrers.

This layer owns the OCI image layout (see :mod:`ocireg.registry.layout`) and its locking. Handlers
call it and shape HTTP answers; it knows nothing of HTTP beyond raising ``RegistryError``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ocireg.digests import Digest, digest_bytes, parse_digest, require_supported
from ocireg.errors import ErrorCode, RegistryError
from ocireg.names import is_tag
from ocireg.registry import layout
from ocireg.registry.commits import IndexCommits
from ocireg.registry.dedupe import Dedupe, store_file
from ocireg.registry.index import IndexEdit, IndexStore, RepoIndex
from ocireg.registry.journal import Change, Journal, intend_off_loop, journaled_off_loop
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.manifestbytes import ManifestBytes
from ocireg.registry.manifestcache import ManifestCache
from ocireg.registry.manifests import Manifest, parse_manifest
from ocireg.registry.offloop import run_database_work, run_storage_work
from ocireg.registry.ondemand import OnDemand
from ocireg.registry.refdedupe import PlaceholderDriver, ReferenceDedupe, resolve
from ocireg.registry.uploads import SessionCaps, UploadStore
from ocireg.storage.driver import FileInfo, PathNotFoundError, StorageDriver

T = TypeVar("T")

# A manifest larger than this is parsed, hashed and checked in a thread: a 4 MiB one of 28,000
# layers takes a second or two, during which the event loop would serve nobody.
OFF_LOOP_BYTES = 64 * 1024

# Image configs kept per process by digest (see small_blob): a few KiB each, so thousands.
CONFIG_BUDGET = 8 * 1024 * 1024

# An extension's say on a manifest push (lint, for one): called after the manifest parsed and
# everything it references exists, before anything is written; it raises RegistryError to refuse.
ManifestCheck = Callable[["Registry", str, Manifest], Awaitable[None]]
# Asked before a manifest is served (repository, digest): raises the RegistryError the pull
# gets instead (an extension's policy, such as trust's requireSignature).
PullCheck = Callable[[str, str], Awaitable[None]]

# Told after a manifest DELETE, with the reference the request named (tag or digest) and the
# manifest it resolved to, which observers' ``untagged`` and ``deleted`` do not carry.
RemovalListener = Callable[[str, str, "StoredManifest"], None]

# Told when a manifest check refuses a push: repository, reference, the manifest's digest, the
# parsed manifest, its bytes and the refusal (raised on to the client afterwards).
RefusalListener = Callable[[str, str, str, Manifest, bytes, RegistryError], None]


class Observer(Protocol):
    """Told about what changed, after it is in storage (the meta DB is one). Called on the
    request path, so an observer only records and does its work later."""

    def pushed(
        self,
        repo: str,
        digest: str,
        size: int,
        tags: list[str],
        pusher: str = "",
        manifest: Manifest | None = None,  # as the push parsed it: spares a parse again
    ) -> None: ...

    def untagged(self, repo: str, tag: str) -> None: ...

    def deleted(self, repo: str, digest: str) -> None: ...

    def pulled(self, repo: str, digest: str) -> None: ...

    def created(self, repo: str) -> None:
        """A new repository. Unlike the others, called in a thread and may block: the catalog
        lists a repository as soon as the request that created it is answered."""

    def removed(self, repo: str) -> None:
        """GC removed a repository that nothing was left in. Like ``created``, called in a
        thread: the catalog stops listing it at once."""


class QuietObserver:
    """An :class:`Observer` that ignores everything: an observer that cares about a few
    changes subclasses it and writes only those methods."""

    def pushed(
        self,
        repo: str,
        digest: str,
        size: int,
        tags: list[str],
        pusher: str = "",
        manifest: Manifest | None = None,
    ) -> None:
        return None

    def untagged(self, repo: str, tag: str) -> None:
        return None

    def deleted(self, repo: str, digest: str) -> None:
        return None

    def pulled(self, repo: str, digest: str) -> None:
        return None

    def created(self, repo: str) -> None:
        return None

    def removed(self, repo: str) -> None:
        return None


class ReferenceIndex(Protocol):
    """What already knows each manifest's config and layers (the meta DB), so that a blob
    delete need not parse every manifest of a large repository."""

    def blob_users(self, repo: str, blob: str) -> tuple[set[str], list[str]]:
        """(the manifests of ``repo`` it knows, those of them whose config or a layer is
        ``blob``). It may lag behind storage: manifests it does not know are read."""
        ...


# A refusal names at most this many of the manifests that reference a blob.
_USERS_SHOWN = 10


@dataclass(frozen=True)
class StoredManifest:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class PushedManifest:
    digest: Digest
    subject: str | None
    tags: list[str]


# The lock taken around creating a repository when a limit applies: repository names cannot
# start with ".", so it never collides with one.
QUOTA_LOCK = ".repository-quota"


@dataclass(frozen=True)
class RepositoryLimit:
    """``maxRepos`` of a storage section: at most ``limit`` repositories among those
    ``repositories`` lists (every root's, or one sub-path's)."""

    key: str
    limit: int
    repositories: Callable[[], list[str]]

    def check(self) -> None:
        current = len(self.repositories())
        if current >= self.limit:
            raise RegistryError(
                ErrorCode.TOOMANYREQUESTS,
                {
                    "reason": f"repository limit reached ({self.key} is {self.limit})",
                    "limit": self.limit,
                    "current": current,
                },
            )


class Registry:
    """One storage root. ``serves`` says which repository names this root holds (all, unless
    ``storage.subPaths`` routes some elsewhere; see :mod:`ocireg.registry.routes`)."""

    def __init__(
        self,
        driver: StorageDriver,
        locks: KeyedLocks,
        *,
        docker_compat: bool = True,
        fsync: bool = False,
        dedupe: bool = False,
        serves: Callable[[str], bool] | None = None,
        upload_caps: SessionCaps | None = None,
        references: ReferenceDedupe | None = None,
    ) -> None:
        """``references``: an s3 root's dedupe by reference (``dedupe`` is then unused):
        the registry reads the bucket through its placeholders."""
        if references is not None:
            driver = PlaceholderDriver(driver, references)
        self.driver = driver
        self.locks = locks
        self.serves = serves
        self.repository_limits: list[RepositoryLimit] = []
        self.docker_compat = docker_compat
        self.indexes = IndexStore(driver)
        self.commits = IndexCommits(locks, self.indexes, driver.blob_check_is_request)
        self.dedupe: Dedupe | ReferenceDedupe = references or Dedupe(driver, dedupe)
        if references is not None:
            references.repositories = self.repositories
        self.uploads = UploadStore(driver, locks, fsync, self.dedupe, upload_caps)
        self.parsed = ManifestCache()
        self.manifest_data = ManifestBytes()
        self.config_data = ManifestBytes(CONFIG_BUDGET)  # see small_blob
        self.manifest_checks: list[ManifestCheck] = []
        self.pull_checks: list[PullCheck] = []
        self.observers: list[Observer] = []
        self.removal_listeners: list[RemovalListener] = []
        self.refusal_listeners: list[RefusalListener] = []
        self.journals: list[Journal] = []  # told before a change is committed, and after
        self.reference_index: ReferenceIndex | None = None
        self.on_demand: OnDemand | None = None  # an upstream for what is missing (sync)

    # -- repositories ---------------------------------------------------------------------
    def index(self, repo: str) -> RepoIndex | None:
        return self.indexes.load(repo)

    async def ensure_repository(self, repo: str) -> None:
        """Create ``repo`` unless it exists; over a ``maxRepos`` limit, TOOMANYREQUESTS."""
        if await self.off_loop(self.driver.exists, layout.index_file(repo)):
            return
        if not self.repository_limits:
            await self._create_repository(repo)
            return
        # Counted and created under one lock across processes, so two new repositories
        # pushed at once cannot both take the last place.
        async with self.locks.hold(QUOTA_LOCK):
            await self._create_repository(repo)

    async def check_room(self, repo: str) -> None:
        """TOOMANYREQUESTS when creating ``repo`` would pass a ``maxRepos`` limit: asked before
        a request writes anything for a new repository (``ensure_repository`` asks again,
        under the lock, before creating it). Counting walks storage: in a thread."""
        if self.repository_limits and not await self.off_loop(
            self.driver.exists, layout.index_file(repo)
        ):
            for limit in self.repository_limits:
                await run_storage_work(True, limit.check)  # it walks storage

    async def _create_repository(self, repo: str) -> None:
        async with self.locks.hold(repo):
            if await self.off_loop(self.driver.exists, layout.index_file(repo)):
                return
            for limit in self.repository_limits:
                await run_storage_work(True, limit.check)  # it walks storage
            async with journaled_off_loop(self.journals, Change("created", repo)):
                await self.off_loop(self._lay_out, repo)
        await self._created(repo)

    def _lay_out(self, repo: str) -> None:
        """Write a new repository's layout (under its lock)."""
        self.driver.put_content(layout.layout_file(repo), layout.LAYOUT_CONTENT)
        self.indexes.save(repo, IndexEdit(None))

    def _lay_out_if_removed(self, repo: str) -> bool:
        """Lay ``repo`` out again if GC removed it meanwhile (under its lock); whether it did."""
        if not self._removed_meanwhile(repo):
            return False
        self._lay_out(repo)
        return True

    def _removed_meanwhile(self, repo: str) -> bool:
        """Whether GC removed the repository (empty) since this request made sure it exists;
        asked under its lock, by what is about to put something in it."""
        return not self.driver.exists(layout.layout_file(repo))

    async def _revived(self, repo: str) -> None:
        """A repository GC had removed came back: the journals are told after the fact (a
        crash in between loses that repository.created; the rare path, kept simple)."""
        async with journaled_off_loop(self.journals, Change("created", repo)):
            pass
        await self._created(repo)

    async def _created(self, repo: str) -> None:
        for observer in self.observers:
            await run_database_work(True, observer.created, repo)  # (the meta DB's row)

    def repositories(self) -> list[str]:
        found: list[str] = []
        self._collect_repositories("", found)
        if self.serves is not None:
            found = [name for name in found if self.serves(name)]
        return sorted(found)

    def of(self, repo: str) -> Registry:
        """The registry holding ``repo``: this one (see ``Registries.of`` for several roots)."""
        return self

    def roots(self) -> list[Registry]:
        return [self]

    def _collect_repositories(self, path: str, found: list[str]) -> None:
        try:
            children = self.driver.list(path)
        except PathNotFoundError:
            return
        names = {child.rsplit("/", 1)[-1] for child in children}
        if path and layout.INDEX_JSON in names and layout.OCI_LAYOUT in names:
            found.append(path)
        for child in children:
            name = child.rsplit("/", 1)[-1]
            if name.startswith(".") or name in layout.LAYOUT_ENTRIES:
                continue
            if "." in name and not self.driver.stat(child).is_dir:
                continue
            self._collect_repositories(child, found)

    # -- blobs ----------------------------------------------------------------------------
    def blob_info(self, repo: str, digest: Digest) -> FileInfo:
        return self.blob_location(repo, digest)[1]

    def blob_location(self, repo: str, digest: Digest) -> tuple[str, FileInfo]:
        """Where the blob's bytes are (the content store, for an s3 placeholder) and its
        details; BLOB_UNKNOWN when the repository has none."""
        try:
            path, info = resolve(self.driver, layout.blob_file(repo, digest))
        except PathNotFoundError:
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": str(digest)}) from None
        if info.is_dir:
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": str(digest)})
        return path, info

    def blob_bytes(self, repo: str, digest: Digest, limit: int) -> bytes | None:
        """A small blob's content, or None when it is missing or larger than ``limit``."""
        # One read of at most limit + 1 bytes, not a stat and then a read: on S3 that is one
        # request instead of two (the meta DB reads each pushed manifest's config so).
        try:
            with self.driver.reader(layout.blob_file(repo, digest)) as handle:
                data = handle.read(limit + 1)
        except PathNotFoundError:
            return None
        return data if len(data) <= limit else None

    def small_blob(self, repo: str, digest: Digest, limit: int) -> bytes | None:
        """Like :meth:`blob_bytes`, for blobs read again and again (image configs, which the
        meta DB reads for every push of a manifest): kept per process by digest, bounded
        (see :mod:`ocireg.registry.manifestbytes`), so a manifest pushed again under another
        tag costs no read. A digest names its content, so what one repository held is what
        any other holds under that digest; callers ask for blobs their repository has (a
        listed manifest's config)."""
        kept = self.config_data.get(str(digest))
        if kept is not None:
            return kept if len(kept) <= limit else None
        data = self.blob_bytes(repo, digest, limit)
        if data is not None:
            self.config_data.put(str(digest), data)
        return data

    def has_blob(self, repo: str, digest: Digest) -> bool:
        return self.driver.exists(layout.blob_file(repo, digest))

    async def delete_blob(self, repo: str, digest: Digest) -> None:
        """Delete a blob no manifest of ``repo`` references (405 DENIED otherwise, as zot
        answers: the image would no longer pull). Another repository's reference does not
        count, deduped or not: each repository names its own blobs."""
        await self.off_loop(self.blob_info, repo, digest)
        async with self.locks.hold(repo):  # pushes check their references under it too
            users = await run_storage_work(True, self.blob_users, repo, str(digest))
            if users:
                reason = f"referenced by {len(users)} manifest(s) of this repository"
                detail = {"reason": reason, "manifests": users[:_USERS_SHOWN]}
                raise RegistryError(ErrorCode.DENIED, detail, status=405)
            await self.off_loop(self._remove_blob, repo, digest)

    def _remove_blob(self, repo: str, digest: Digest) -> None:
        """Delete a blob file of ``repo`` (under its lock)."""
        # pushes stop trusting the blobs they found (see IndexStore.edit) before it goes
        self.indexes.save_before_removing_blobs(repo, self.indexes.load(repo))
        try:
            self.driver.delete(layout.blob_file(repo, digest))
        except PathNotFoundError:
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": str(digest)}) from None

    def blob_users(self, repo: str, blob: str) -> list[str]:
        """The manifests of ``repo`` that are ``blob`` or have it as config or layer, sorted.
        The reference index answers for the manifests it knows; only the others (pushed in
        the last second, before it caught up) are parsed. Blocking: run it in a thread."""
        index = self.index(repo)
        if index is None:
            return []
        if blob in index.by_digest:
            return [blob]
        known: set[str] = set()
        users: set[str] = set()
        if self.reference_index is not None:
            known, listed = self.reference_index.blob_users(repo, blob)
            users.update(digest for digest in listed if digest in index.by_digest)
        for digest in index.by_digest:
            if digest in known:
                continue
            manifest = self.parsed_manifest(repo, digest)
            if manifest is None:
                continue
            blobs = [manifest.config, *manifest.layers] if manifest.config else manifest.layers
            if any(str(descriptor.digest) == blob for descriptor in blobs):
                users.add(digest)
        return sorted(users)

    async def mount_blob(self, repo: str, digest: Digest, sources: Iterable[str]) -> bool:
        """Link a blob into ``repo`` from the first of ``sources`` that holds it; whether
        ``repo`` has it now."""
        if not digest.supported:
            return False
        for candidate in sources:
            # (False: its content is not there after all, or deleted meanwhile: the next one)
            if (
                candidate != repo
                and await self.off_loop(self.has_blob, candidate, digest)
                and await self._adopt(repo, digest, layout.blob_file(candidate, digest))
            ):
                return True
        return await self.off_loop(self.has_blob, repo, digest)

    async def take_stored(self, repo: str, digest: Digest) -> int | None:
        """Give ``repo`` a blob whose bytes this root's dedupe store holds already (another
        repository's, or one GC has yet to sweep), as a mount would: a link on disk, a
        reference on s3. For a mirror (sync), which then fetches nothing for a layer that
        another mirrored image shares. The blob's size, or None when the store lacks it (or
        dedupe is off)."""
        if not digest.supported or not self.dedupe.enabled:
            return None
        if not await self.off_loop(self.dedupe.has, digest):
            return None
        if not await self._adopt(repo, digest, store_file(digest)):
            return None
        if isinstance(self.dedupe, Dedupe):
            # a sweep that found the store's entry unnamed may have deleted it just after
            # the link: the repository's name is put back in the store (a no-op if there)
            self.dedupe.record(layout.blob_file(repo, digest), digest)
        info = await self.off_loop(self.blob_info, repo, digest)
        return info.size

    async def off_loop(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)``, on a storage worker thread where storage is asked over the network
        (s3), else on the loop (see :mod:`.offloop`)."""
        return await run_storage_work(self.driver.blob_check_is_request, call, *args)

    async def _adopt(self, repo: str, digest: Digest, source: str) -> bool:
        """Link the blob at ``source`` into ``repo`` (see ``_link``) under its lock, laying the
        repository out again if GC removed it meanwhile; False when ``source`` is gone."""
        await self.ensure_repository(repo)
        try:
            async with self.locks.hold(repo):
                # both in one call: a cancellation between them would leave a blob in a
                # repository GC removed (see .offloop: the call is finished in any case)
                linked, revived = await self.off_loop(self._link, repo, digest, source)
        except PathNotFoundError:
            return False
        if revived:
            await self._revived(repo)
        return linked

    def _link(self, repo: str, digest: Digest, source: str) -> tuple[bool, bool]:
        """Give ``repo`` the blob at ``source`` (under ``repo``'s lock), new to GC; on s3 with
        dedupe, a reference to the stored content; then lay ``repo`` out again if GC removed
        it meanwhile. (Whether it was linked: not when ``source`` is gone; whether the
        repository was laid out again.)"""
        dedupe = self.dedupe
        if isinstance(dedupe, ReferenceDedupe) and dedupe.enabled:
            if not dedupe.take(repo, digest, source, False):
                return False, False
        else:
            target = layout.blob_file(repo, digest)
            self.driver.link(source, target)
            self.driver.touch(target)  # a fresh mount must look new to GC
        return True, self._lay_out_if_removed(repo)

    def may_hold_anywhere(self, digest: Digest) -> bool:
        """False when no repository can hold the blob: with dedupe on, every committed blob
        is in the dedupe store (a blob that the one-time conversion has not reached yet
        looks absent)."""
        return not self.dedupe.enabled or self.dedupe.has(digest)

    # -- manifests ------------------------------------------------------------------------
    def resolve(self, repo: str, reference: str) -> StoredManifest:
        tag = is_tag(reference)
        key = reference if tag else str(parse_digest(reference))
        index = self.index(repo)
        entry = None
        if index is not None:
            entry = index.tags.get(key) if tag else index.by_digest.get(key)
        if entry is None:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"name": repo, "reference": reference})
        return StoredManifest(entry["digest"], entry["mediaType"], entry["size"])

    def manifest_bytes(self, repo: str, stored: StoredManifest) -> bytes:
        """The content of a manifest ``resolve`` found in the repository's index."""
        kept = self.manifest_data.get(stored.digest)
        if kept is not None:
            return kept
        try:
            data = self.driver.get_content(layout.blob_file(repo, parse_digest(stored.digest)))
        except PathNotFoundError:
            raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"digest": stored.digest}) from None
        self.manifest_data.put(stored.digest, data)
        return data

    async def put_manifest(
        self,
        repo: str,
        reference: str,
        data: bytes,
        content_type: str | None,
        tags: list[str],
        pusher: str = "",
        may_move_tags: Callable[[], bool] | None = None,
    ) -> PushedManifest:
        """Store a manifest and point ``tags`` at it. ``may_move_tags`` says whether the
        caller may point an existing tag elsewhere; asked under the repository lock, so a
        tag created meanwhile by someone else is not overwritten by a caller who may not."""
        heavy = len(data) > OFF_LOOP_BYTES
        # A repository this process has seen needs no existence check (a request to S3): if
        # GC removed it since, the commit below finds it gone under the lock and lays it out
        # again. With a maxRepos limit, that would skip the count: then it is asked always.
        ensure = bool(self.repository_limits) or not self.indexes.holds(repo)
        # What the manifest references is checked under the repository lock, in the commit
        # (GC and blob DELETE take that lock, so a check made before it proves nothing). A
        # check before the lock as well only where something happens before the commit that
        # must not happen for a manifest whose blobs are missing: a new repository laid out
        # (a partial write), an extension's manifest check (told that the blobs exist).
        early = ensure or bool(self.manifest_checks)
        # in a thread when large, or when its check asks S3 (see .offloop)
        prepared = await run_storage_work(
            heavy or (early and self.driver.blob_check_is_request),
            self._prepare, repo, reference, data, content_type, early,
        )  # fmt: skip
        manifest, digest = prepared
        if is_tag(reference):
            tags = [reference, *tags]
        for check in self.manifest_checks:
            try:
                await check(self, repo, manifest)
            except RegistryError as refusal:
                for refused in self.refusal_listeners:
                    refused(repo, reference, str(digest), manifest, data, refusal)
                raise
        if ensure:
            await self.ensure_repository(repo)
        blob = layout.blob_file(repo, digest)
        self.parsed.put(str(digest), manifest, len(data))
        descriptor: dict[str, Any] = {
            "mediaType": manifest.media_type,
            "digest": str(digest),
            "size": len(data),
        }
        if manifest.artifact_type:
            descriptor["artifactType"] = manifest.artifact_type
        unique_tags = list(dict.fromkeys(tags))
        revived: list[bool] = []

        def record(edit: IndexEdit) -> None:
            # A manifest the index lists already (pushed again, under another tag) is stored
            # with everything it references: its push checked that under this lock, and since
            # then GC and blob DELETE, which take the lock too, keep what a listed manifest
            # needs (the manifest blob, its config and layers, an index's listed children).
            # So nothing is asked of storage for it, and its blob is not written again.
            listed = descriptor["digest"] in edit.by_digest
            if not listed:
                # Under the lock GC takes, so nothing referenced is collected meanwhile;
                # against the edit, which holds what earlier pushes of this batch added.
                self._check_references(repo, manifest, edit.by_digest, edit.present)
            if may_move_tags is not None:
                pointed = {t: edit.tags[t]["digest"] for t in unique_tags if t in edit.tags}
                moved = any(d != descriptor["digest"] for d in pointed.values())
                if moved and not may_move_tags():
                    raise RegistryError(ErrorCode.DENIED, {"reason": "moving a tag needs update"})
            if not listed:
                # written unless there (an unconditional write would renew the modification
                # time GC reads); on S3 one conditional request
                self.driver.put_new_content(blob, data)
            if edit.base_stamp is None and self._removed_meanwhile(repo):
                self.driver.put_content(layout.layout_file(repo), layout.LAYOUT_CONTENT)
                revived.append(True)
            if not unique_tags:  # a tag absorbs the untagged entry add_manifest would append
                edit.add_manifest(descriptor)
            for tag in unique_tags:
                edit.set_tag(tag, descriptor)

        change = Change("pushed", repo, str(digest), manifest.media_type, tuple(unique_tags), data)
        settle = await intend_off_loop(self.journals, change)
        await self.commits.apply(repo, record, heavy=heavy, settle=settle)
        self.manifest_data.put(str(digest), data)  # stored now: the bytes its digest names
        if revived:
            await self._revived(repo)
        for observer in self.observers:
            observer.pushed(repo, str(digest), len(data), unique_tags, pusher, manifest)
        subject = str(manifest.subject.digest) if manifest.subject else None
        return PushedManifest(digest, subject, unique_tags)

    def _prepare(
        self, repo: str, reference: str, data: bytes, content_type: str | None, check: bool
    ) -> tuple[Manifest, Digest]:
        """Parse a pushed manifest, check its digest against a digest reference, and, with
        ``check``, that what it references is in the repository."""
        manifest = parse_manifest(data, content_type, self.docker_compat, pushed=True)
        if is_tag(reference):
            digest = digest_bytes(data)
        else:
            wanted = require_supported(parse_digest(reference))
            digest = digest_bytes(data, wanted.algorithm)
            if digest != wanted:
                raise RegistryError(
                    ErrorCode.DIGEST_INVALID, {"expected": reference, "actual": str(digest)}
                )
        if check:
            # blobs found under an earlier hold of the lock are not asked again: if one was
            # removed since, the check under the lock (in the commit) still refuses the push
            self._check_references(repo, manifest, present=self.indexes.found_before(repo))
        return manifest, digest

    def _check_references(
        self,
        repo: str,
        manifest: Manifest,
        known: Mapping[str, Any] | None = None,
        present: set[str] | None = None,
    ) -> None:
        """MANIFEST_BLOB_UNKNOWN unless every blob and child manifest it references is in
        the repository. ``present``: blobs found already while the caller holds the
        repository lock (each is asked of storage once; found ones are added)."""
        missing: list[str] = []
        blobs = [manifest.config] if manifest.config else []
        checked = set() if present is None else present  # each blob once
        for descriptor in [*blobs, *manifest.layers]:
            digest = str(descriptor.digest)
            if descriptor.external or digest in checked or digest in missing:
                continue
            if self.has_blob(repo, descriptor.digest):
                checked.add(digest)
            else:
                missing.append(digest)
        if manifest.manifests:
            if known is None:
                index = self.index(repo)
                known = index.by_digest if index is not None else {}
            missing += [str(d.digest) for d in manifest.manifests if str(d.digest) not in known]
        if missing:
            raise RegistryError(ErrorCode.MANIFEST_BLOB_UNKNOWN, {"missing": missing})

    async def delete_manifest(self, repo: str, reference: str) -> None:
        async with self.locks.hold(repo):
            stored, edit = await self.off_loop(self._removal, repo, reference)
            change = Change("removed", repo, stored.digest, stored.media_type, (reference,))
            async with journaled_off_loop(self.journals, change):
                await self.off_loop(self.indexes.save, repo, edit)
        for removed in self.removal_listeners:
            removed(repo, reference, stored)
        for observer in self.observers:
            if is_tag(reference):
                observer.untagged(repo, reference)
            else:
                observer.deleted(repo, stored.digest)

    def _removal(self, repo: str, reference: str) -> tuple[StoredManifest, IndexEdit]:
        """What ``delete_manifest`` removes, and the index without it (under the lock)."""
        stored = self.resolve(repo, reference)
        edit = self.indexes.edit(repo)
        if is_tag(reference):
            edit.remove_tag(reference)
        else:
            parents = self._parents_of(repo, stored.digest)
            if parents:
                raise RegistryError(
                    ErrorCode.DENIED,
                    {"reason": "an index references this manifest", "indexes": parents},
                    status=405,
                )
            edit.remove_digest(stored.digest)
        return stored, edit

    async def check_pull(self, repo: str, digest: str) -> None:
        """Let the extensions' pull checks refuse serving the manifest ``digest``."""
        for check in self.pull_checks:
            await check(repo, digest)

    def note_pull(self, repo: str, digest: str) -> None:
        """A client fetched a manifest (download statistics)."""
        for observer in self.observers:
            observer.pulled(repo, digest)

    def _parents_of(self, repo: str, digest: str) -> list[str]:
        index = self.index(repo)
        if index is None:
            return []
        parents = []
        for entry_digest, entry in index.by_digest.items():
            if entry.get("mediaType") in (
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
            ):
                parsed = self.parsed_manifest(repo, entry_digest)
                if parsed and any(str(d.digest) == digest for d in parsed.manifests):
                    parents.append(entry_digest)
        return parents

    def parsed_manifest(self, repo: str, digest: str) -> Manifest | None:
        """A stored manifest, parsed once per process while the cache (bounded in bytes, see
        :mod:`ocireg.registry.manifestcache`) keeps it; manifests are immutable by digest."""
        cached = self.parsed.get(digest)
        if cached is not None:
            return cached
        index = self.index(repo)
        entry = index.by_digest.get(digest) if index else None
        manifest = self.read_manifest(repo, digest, entry["mediaType"]) if entry else None
        if manifest is not None and entry is not None:
            self.parsed.put(digest, manifest, int(entry.get("size") or 0))
        return manifest

    def read_manifest(self, repo: str, digest: str, media_type: str | None) -> Manifest | None:
        """A stored manifest, parsed, without keeping it; None when it is missing or invalid."""
        try:
            return self.load_manifest(repo, digest, media_type)
        except RegistryError:
            return None

    def load_manifest(self, repo: str, digest: str, media_type: str | None) -> Manifest | None:
        """A stored manifest, parsed, without keeping it: for passes over all of storage
        (the meta DB's), which would otherwise fill the request path's cache. None when it is
        missing; RegistryError when storage holds what no push would accept now (written by
        an older version or another tool)."""
        try:
            data = self.driver.get_content(layout.blob_file(repo, parse_digest(digest)))
        except PathNotFoundError:
            return None
        return parse_manifest(data, media_type, docker_compat=True)

    # -- referrers ------------------------------------------------------------------------
    def referrers(
        self, repo: str, subject: Digest, artifact_types: list[str]
    ) -> list[dict[str, Any]]:
        index = self.index(repo)
        if index is None:
            return []
        wanted = str(subject)
        found: list[dict[str, Any]] = []
        for digest, entry in index.by_digest.items():
            manifest = self.parsed_manifest(repo, digest)
            if (
                manifest is None
                or manifest.subject is None
                or str(manifest.subject.digest) != wanted
            ):
                continue
            artifact_type = manifest.referrer_artifact_type()
            if artifact_types and artifact_type not in artifact_types:
                continue
            descriptor: dict[str, Any] = {
                "mediaType": manifest.media_type,
                "digest": digest,
                "size": entry["size"],
            }
            if artifact_type:
                descriptor["artifactType"] = artifact_type
            if manifest.annotations:
                descriptor["annotations"] = manifest.annotations
            found.append(descriptor)
        return found


def manifest_json(manifests: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        },
        separators=(",", ":"),
    ).encode()
