"""``ocireg gc CONFIG [--dry-run]``: garbage collection now, printing what goes.

The rules are the background GC's (:mod:`ocireg.registry.gc`), with each storage root's own
``gcDelay`` and ``retention``; the dedupe store is swept after each root. ``gcInterval`` is a
schedule and does not apply; a root with ``gc: false`` is skipped; outside a root's
``gcTimeWindow`` a run is refused unless ``--ignore-window`` (a dry run always runs).

Safe while ``ocireg serve`` runs on the same root: every repository is collected under the
per-repository file lock that pushes, mounts and the server's own GC take, and the meta DB
(SQLite in WAL mode, shared by processes) is told what went, so the catalog and search stop
showing it at once.

What is freed is counted by content, not by name: a blob that is still linked elsewhere (a
mount into another repository, the dedupe store) frees nothing until its last name goes.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from ocireg.background import Root, roots
from ocireg.config import Config, RootConfig
from ocireg.configcheck import ConfigError
from ocireg.meta.backends import open_meta
from ocireg.meta.db import MetaDB
from ocireg.meta.sync import Recorder, sync_all
from ocireg.registry.build import build_registry, meta_dir
from ocireg.registry.gc import Collected, GarbageCollector
from ocireg.registry.locks import try_exclusive
from ocireg.storage.driver import FileInfo

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human(size: float) -> str:
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


# One content: hard links share their size and modification time, and have one digest.
_Content = tuple[str, int, float]


@dataclass
class Tally:
    """What a run removed, and how much of it was the last name of its content."""

    names: dict[_Content, int] = field(default_factory=dict)  # names of it removed
    links: dict[_Content, int] = field(default_factory=dict)  # names it had when first seen
    blobs: int = 0
    manifests: int = 0
    uploads: int = 0
    tags: int = 0
    removed_repositories: int = 0
    repositories: set[str] = field(default_factory=set)

    def count(self, content: _Content, links: int) -> None:
        self.names[content] = self.names.get(content, 0) + 1
        self.links[content] = max(self.links.get(content, 0), links)

    def removed_names(self, content: _Content) -> int:
        return self.names.get(content, 0)

    @property
    def freed(self) -> int:
        return sum(c[1] for c, n in self.names.items() if n >= self.links[c])

    def add(self, result: Collected) -> None:
        for file in result.files:
            key = file.name if file.kind == "blob" else f"{result.repo}/.uploads/{file.name}"
            self.count((key, file.size, file.mod_time), file.links)
        self.blobs += len(result.blobs)
        self.manifests += len(result.manifests)
        self.uploads += len(result.uploads)
        self.tags += len(result.tags)
        self.removed_repositories += result.repository_removed
        if result.total or result.repository_removed:
            self.repositories.add(result.repo)

    def summary(self, dry_run: bool) -> str:
        verb = "would free" if dry_run else "freed"
        line = (
            f"{verb} {human(self.freed)} in {plural(self.blobs, 'blob')} "
            f"across {plural(len(self.repositories), 'repository', 'repositories')}"
        )
        extra = [
            plural(self.manifests, "manifest") if self.manifests else "",
            plural(self.uploads, "upload session") if self.uploads else "",
            f"{plural(self.tags, 'tag')} by retention" if self.tags else "",
            plural(self.removed_repositories, "empty repository", "empty repositories") + " removed"
            if self.removed_repositories
            else "",
        ]
        details = ", ".join(part for part in extra if part)
        return f"{line} ({details})" if details else line


def _content_of(info: FileInfo) -> _Content:
    """A dedupe store entry's content (``.ocireg/blobs/<alg>/<hex>``)."""
    algorithm, encoded = info.path.rsplit("/", 2)[-2:]
    return (f"{algorithm}:{encoded}", info.size, info.mod_time)


def result_lines(result: Collected, dry_run: bool) -> list[str]:
    mark = "would remove" if dry_run else "removed"
    repo = result.repo
    lines = [f"{mark} tag         {repo}:{tag} (retention)" for tag in result.tags]
    for digest in result.manifests:
        size = human(result.manifest_sizes.get(digest, 0))
        lines.append(f"{mark} manifest    {repo}@{digest}  {size}")
    manifests = set(result.manifests)
    for file in result.files:
        if file.kind == "blob" and file.name not in manifests:
            lines.append(f"{mark} blob        {repo}@{file.name}  {human(file.size)}")
        elif file.kind == "upload":
            lines.append(f"{mark} upload      {repo} session {file.name}  {human(file.size)}")
    if result.repository_removed:
        lines.append(f"{mark} repository  {repo} (empty)")
    return lines


class Progress:
    """``repositories done/total`` on one line of a terminal; nothing when not a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = stream.isatty()

    def show(self, done: int, total: int, where: str) -> None:
        if self.shown:
            line = f"gc {where}: {done}/{total} repositories"
            print(f"\r{line}\x1b[K", end="", file=self.stream, flush=True)

    def clear(self) -> None:
        if self.shown:
            print("\r\x1b[K", end="", file=self.stream, flush=True)


def _root_settings(config: Config) -> list[tuple[str, RootConfig]]:
    """Each storage root's key path and settings."""
    found: list[tuple[str, RootConfig]] = [("storage", config.storage)]
    subs = (config.storage.subPaths or {}).items()
    return found + [(f"storage.subPaths.{key}", sub) for key, sub in subs]


def check_roots(config: Config, source: str) -> None:
    """Every storage root must exist: collecting a mistyped one would create it, empty."""
    found = _root_settings(config)
    problems = [
        f"{source}: {key}.rootDirectory: {settings.rootDirectory}: not a directory"
        for key, settings in found
        if not settings.resolved_root().is_dir()
    ]
    if problems:
        raise ConfigError(problems)


def closed_windows(config: Config, now: float) -> list[str]:
    """Why a real run may not start now: each enabled root outside its ``gcTimeWindow``."""
    found = _root_settings(config)
    closed = []
    for key, settings in found:
        window = settings.time_window()
        if settings.gc and window is not None and not window.contains(now):
            wait = window.seconds_until_open(now)
            closed.append(
                f"{key}.gcTimeWindow: outside {settings.gcTimeWindow} (UTC), "
                f"opens in {int(wait // 3600)}h{int(wait % 3600 // 60):02d}m"
            )
    return closed


@dataclass
class Run:
    config: Config
    dry_run: bool
    out: TextIO
    err: TextIO
    tally: Tally = field(default_factory=Tally)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.progress = Progress(self.err)

    async def collect(self) -> None:
        registries = build_registry(self.config)
        shared = meta_dir(self.config, None)
        assert shared is not None  # a filesystem root
        db = open_meta(self.config, shared)
        try:
            with try_exclusive(shared / "meta.lock") as ours:
                if ours:  # else a server is bringing it up to date right now
                    await asyncio.to_thread(sync_all, registries, db)
            recorder = Recorder(registries, db)
            for registry in registries.roots():
                registry.observers.append(recorder)
                registry.reference_index = db
                registry.indexes.listeners.append(recorder.index_saved)
            for root in roots(self.config, registries):
                if not root.settings.gc:
                    print(f"{root.key}: gc is off, skipped", file=self.err)
                    continue
                await self._collect_root(root, db, recorder)
        finally:
            db.close()

    async def _collect_root(self, root: Root, db: MetaDB, recorder: Recorder) -> None:
        settings, registry = root.settings, root.registry
        collector = GarbageCollector(
            registry,
            settings.gcDelay,
            clock=self.clock,
            retention=settings.retention,
            meta=db,
            preview=self.dry_run,
        )
        repositories = await asyncio.to_thread(registry.repositories)
        for done, repo in enumerate(repositories, 1):
            self.progress.show(done - 1, len(repositories), root.key)
            result = await collector.collect(repo)
            await asyncio.to_thread(recorder.flush)
            self._report(result)
        self.progress.show(len(repositories), len(repositories), root.key)
        unnamed = None
        if self.dry_run:

            def unnamed(info: FileInfo) -> bool:
                content = _content_of(info)
                return info.links - self.tally.removed_names(content) == 1

        swept = await asyncio.to_thread(
            registry.dedupe.sweep, settings.gcDelay, self.clock, unnamed
        )
        for info in swept:
            self.tally.count(_content_of(info), info.links)
        self.progress.clear()

    def _report(self, result: Collected) -> None:
        self.tally.add(result)
        lines = result_lines(result, self.dry_run)
        if lines:
            self.progress.clear()
            print("\n".join(lines), file=self.out, flush=True)


def run_gc(
    config: Config,
    source: str,
    dry_run: bool,
    ignore_window: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    check_roots(config, source)
    closed = [] if dry_run or ignore_window else closed_windows(config, time.time())
    if closed:
        for reason in closed:
            print(f"{source}: {reason}; --ignore-window collects now", file=err)
        return 2
    run = Run(config, dry_run, out, err)
    asyncio.run(run.collect())
    print(run.tally.summary(dry_run), file=out)
    return 0
