"""Keep the meta DB equal to storage: a full pass at start, and recorded changes as they happen.

At start, each repository's ``index.json`` generation (or, for a file another tool wrote, a
hash of it) is compared with the stamp the DB keeps; only repositories that differ are read
again, so a restart with a current DB reads one small file head per repository. While serving,
:class:`Recorder` notes pushes, deletions and pulls on the request path and applies them in
batches (every second, in a thread), so a pull costs a dictionary update.

One bad record never costs more than itself: a manifest that cannot be read or stored (one an
older version accepted, say) is logged and skipped, and the repository is left unstamped so
that each start tries it again; every other manifest, repository and recorded change goes on.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from ocireg.digests import parse_digest
from ocireg.errors import RegistryError
from ocireg.heap import give_back
from ocireg.logs import event
from ocireg.meta.db import MetaDB
from ocireg.meta.records import ImageRecord, children_platforms, image_record
from ocireg.registry import layout
from ocireg.registry.manifests import Manifest
from ocireg.registry.routes import Routed
from ocireg.registry.store import Registry
from ocireg.storage.driver import PathNotFoundError

log = logging.getLogger("ocireg.meta")


def read_record(
    registry: Registry,
    repo: str,
    digest: str,
    size: int,
    media_type: str | None = None,
    parsed: Manifest | None = None,
) -> ImageRecord | None:
    """The record of a stored manifest (``parsed`` already, when a push passed it on); None
    when it is gone. Raises RegistryError when storage holds a manifest no push would accept
    now."""
    manifest: Manifest | None
    if parsed is not None:
        manifest = parsed
    elif media_type is None:  # a recorded push: recent, likely in the registry's cache
        manifest = registry.parsed_manifest(repo, digest)
    else:  # a pass over storage: parsed without filling the cache
        manifest = registry.load_manifest(repo, digest, media_type)
    if manifest is None:
        return None
    record = image_record(registry, repo, digest, size, manifest)
    if record.children:
        children_platforms(registry, repo, record)
    return record


def stored_at(registry: Registry, repo: str, digest: str) -> float:
    """When storage last wrote the manifest's blob (0.0: unknown): the push time a pass over
    storage can know. A recorded push needs none: it knows when it happened."""
    with contextlib.suppress(PathNotFoundError, RegistryError):
        return registry.driver.stat(layout.blob_file(repo, parse_digest(digest))).mod_time
    return 0.0


def sync_repository(registry: Registry, db: MetaDB, repo: str, now: float) -> bool:
    """Bring one repository's rows up to date; False when they already were."""
    index = registry.indexes.load(repo)
    if index is None:
        db.drop_repository(repo)
        return True
    stamp = index.stamp
    if db.stamp(repo) == stamp:
        return False
    records: list[ImageRecord] = []
    unreadable: set[str] = set()
    for digest, entry in index.by_digest.items():
        try:
            record = read_record(registry, repo, digest, entry["size"], entry["mediaType"])
            if record is not None:
                record.stored_at = stored_at(registry, repo, digest)
        except Exception as exc:  # a bad manifest must not keep the others out
            skipped(repo, digest, exc)
            unreadable.add(digest)
            continue
        if record is not None:
            records.append(record)
    tags = {tag: entry["digest"] for tag, entry in index.tags.items()}
    tags = {tag: digest for tag, digest in tags.items() if digest not in unreadable}
    failed = db.replace_repository(repo, records, tags, None if unreadable else stamp, now)
    for digest, error in failed.items():
        skipped(repo, digest, error)
    return True


def skipped(repo: str, digest: str, error: BaseException | str) -> None:
    event(
        log,
        logging.WARNING,
        "meta DB skipped a manifest it cannot read or store; delete it to stop this warning",
        repo=repo,
        digest=digest,
        error=error if isinstance(error, str) else why(error),
    )


def why(error: BaseException) -> str:
    if isinstance(error, RegistryError):
        return f"{error.code.name}: {error.detail}"
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class SyncResult:
    repositories: int
    rebuilt: int
    dropped: int
    seconds: float


def sync_all(registry: Routed, db: MetaDB) -> SyncResult:
    """Make the whole DB equal to storage, every root of it (blocking: run it in a thread)."""
    started, now = time.perf_counter(), time.time()
    present = registry.repositories()
    # First: the catalog is served from it. A repository created while the walk ran is
    # listed already and must stay, so only names whose layout is gone now are removed.
    missing = set(db.catalog()) - set(present)
    db.set_catalog(present, [repo for repo in missing if registry.of(repo).index(repo) is None])
    gone = set(db.repositories()) - set(present)
    for repo in gone:
        db.drop_repository(repo)
    rebuilt = sum(_sync_isolated(registry.of(repo), db, repo, now) for repo in present)
    if rebuilt:
        give_back()  # the manifests it parsed: a process would stay at the pass's peak size
    result = SyncResult(len(present), rebuilt, len(gone), time.perf_counter() - started)
    event(
        log,
        logging.INFO,
        "meta sync done",
        repositories=result.repositories,
        rebuilt=result.rebuilt,
        dropped=result.dropped,
        seconds=round(result.seconds, 3),
    )
    return result


def _sync_isolated(registry: Registry, db: MetaDB, repo: str, now: float) -> bool:
    """sync_repository, with a failure logged and the pass going on to the next one."""
    try:
        return sync_repository(registry, db, repo, now)
    except Exception as exc:
        event(log, logging.WARNING, "meta sync skipped a repository", repo=repo, error=why(exc))
        return False


class Recorder:
    """A registry observer that batches changes for the meta DB, and follows index.json's
    generations so that a restart knows which repositories the DB is current for."""

    def __init__(self, registry: Routed, db: MetaDB) -> None:
        self.registry = registry
        self.db = db
        self._lock = threading.Lock()
        # (kind, repo, digest or tag, size, tags, when, pusher, the push's parsed manifest):
        # held until the next flush, a second at most, rather than parsed again then
        self._changes: list[tuple[str, str, str, int, list[str], float, str, Manifest | None]] = []
        self._pulls: dict[tuple[str, str], tuple[int, float]] = {}
        self._stamps: list[tuple[str, str | None, str]] = []

    def pushed(
        self,
        repo: str,
        digest: str,
        size: int,
        tags: list[str],
        pusher: str = "",
        manifest: Manifest | None = None,
    ) -> None:
        with self._lock:
            self._changes.append(("push", repo, digest, size, tags, time.time(), pusher, manifest))

    def untagged(self, repo: str, tag: str) -> None:
        with self._lock:
            self._changes.append(("untag", repo, tag, 0, [], time.time(), "", None))

    def deleted(self, repo: str, digest: str) -> None:
        with self._lock:
            self._changes.append(("delete", repo, digest, 0, [], time.time(), "", None))

    def index_saved(self, repo: str, before: str | None, after: str) -> None:
        with self._lock:
            self._stamps.append((repo, before, after))

    def created(self, repo: str) -> None:
        try:
            self.db.add_repository(repo)
        except self.db.errors as exc:  # the push stands; the next sync lists the repository
            event(log, logging.WARNING, "catalog entry not written", repo=repo, error=str(exc))

    def removed(self, repo: str) -> None:
        try:
            self.db.remove_repository(repo)
        except self.db.errors as exc:  # the next sync drops it
            event(log, logging.WARNING, "catalog entry not removed", repo=repo, error=str(exc))

    def pulled(self, repo: str, digest: str) -> None:
        with self._lock:
            count, _ = self._pulls.get((repo, digest), (0, 0.0))
            self._pulls[(repo, digest)] = (count + 1, time.time())

    def flush(self) -> int:
        """Apply what was recorded (blocking: run it in a thread); returns changes applied."""
        with self._lock:
            changes, self._changes = self._changes, []
            pulls, self._pulls = self._pulls, {}
            stamps, self._stamps = self._stamps, []
        behind: set[str] = set()  # repositories a change of which could not be applied
        # A manifest is read once a batch however many pushes tag it (a burst of tags)
        records: dict[tuple[str, str], ImageRecord | None] = {}
        for kind, repo, subject, size, tags, when, pusher, parsed in changes:
            try:
                self._apply(kind, repo, subject, size, tags, when, pusher, parsed, records)
            except Exception as exc:  # one bad change must not lose the rest of the batch
                skipped(repo, subject, exc)
                behind.add(repo)
        if pulls:
            try:
                self.db.add_pulls(pulls)
            except Exception as exc:
                event(log, logging.WARNING, "meta DB lost download counts", error=str(exc))
        # Last, so a crash in between leaves the stamps behind and the next start re-reads;
        # each advances only from the stamp before it, so a gap (another process's changes
        # not applied yet, or one that failed) stops the chain and the next start re-reads
        # that repository.
        for repo, before, after in stamps:
            if repo not in behind:
                self.db.advance_stamp(repo, before, after)
        return len(changes) + len(pulls)

    def _apply(
        self,
        kind: str,
        repo: str,
        subject: str,
        size: int,
        tags: list[str],
        when: float,
        pusher: str,
        parsed: Manifest | None,
        records: dict[tuple[str, str], ImageRecord | None],
    ) -> None:
        if kind == "push":
            if (repo, subject) not in records:
                registry = self.registry.of(repo)
                records[repo, subject] = read_record(registry, repo, subject, size, None, parsed)
            record = records[repo, subject]
            if record is not None:
                self.db.put_image(repo, record, tags, when, pusher)
        elif kind == "untag":
            self.db.remove_tag(repo, subject)
        else:
            records.pop((repo, subject), None)
            self.db.remove_image(repo, subject)
