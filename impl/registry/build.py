"""The registries a configuration describes: one per storage root (``storage`` and each of
``storage.subPaths``), sharing locks, with Docker compatibility and ``maxRepos`` limits."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ocireg.config import Config, RootConfig
from ocireg.registry.dedupeindex import DedupeIndex, PostgresDedupeIndex, SQLiteDedupeIndex
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.refdedupe import ReferenceDedupe
from ocireg.registry.routes import Registries
from ocireg.registry.sharedlocks import AdvisoryLocks
from ocireg.registry.sharedsessions import SharedUploadSessions
from ocireg.registry.store import Registry, RepositoryLimit
from ocireg.registry.uploads import SessionCaps
from ocireg.storage.driver import StorageDriver
from ocireg.storage.filesystem import FilesystemDriver
from ocireg.storage.memory import MemoryDriver


def meta_dir(config: Config, driver: StorageDriver | None) -> Path | None:
    """Where processes sharing the root keep locks and scheduler state (none in memory)."""
    return config.resolved_root() / ".ocireg" if driver is None else None


def root_driver(root: RootConfig) -> StorageDriver:
    """The driver a root's settings name: local disk, or S3 (``storageDriver``)."""
    settings = root.storageDriver
    if settings is None:
        return FilesystemDriver(root.resolved_root(), fsync=root.commit)
    try:
        from ocireg.storage.s3 import S3Driver
    except ImportError as error:
        raise RuntimeError(
            f"the s3 storage driver needs boto3: pip install 'ocireg[s3]' ({error})"
        ) from error
    return S3Driver(
        bucket=settings.bucket,
        region=settings.region,
        regionendpoint=settings.regionendpoint,
        rootdirectory=settings.rootdirectory,
        secure=settings.secure,
        skipverify=settings.skipverify,
        accesskey=settings.accesskey,
        secretkey=settings.secretkey,
        sessiontoken=settings.sessiontoken,
        forcepathstyle=settings.forcepathstyle,
        chunksize=settings.chunksize,
        redirect=root.redirectBlobURL,
    )


def _root(
    root: RootConfig,
    driver: StorageDriver,
    locks: KeyedLocks,
    docker: bool,
    caps: SessionCaps,
    index: DedupeIndex | None = None,
) -> Registry:
    references = None
    settings = root.storageDriver
    if settings is not None and index is not None:
        # dedupe by reference; built whether on or off: placeholders are read either way
        store = f"s3://{settings.bucket}/{settings.rootdirectory.strip('/')}"
        references = ReferenceDedupe(driver, index, locks, store, root.dedupes_by_reference())
    return Registry(
        driver,
        locks,
        docker_compat=docker,
        fsync=root.commit,
        dedupe=root.dedupes(),
        upload_caps=caps,
        references=references,
    )


def dedupe_index(shared: Path | None, across: AdvisoryLocks | None) -> DedupeIndex:
    """Where s3 roots keep their dedupe references: the shared PostgreSQL meta DB when
    instances share one, else the local meta DB file."""
    if across is not None:
        return PostgresDedupeIndex(across)
    return SQLiteDedupeIndex(shared / "meta.db" if shared else ":memory:")


def build_registry(config: Config, driver: StorageDriver | None = None) -> Registries:
    """``driver`` replaces the main root's filesystem (tests, embedders); sub-paths then get
    a memory driver each, so nothing lands on disk."""
    shared = meta_dir(config, driver)
    postgres = config.storage.postgres()
    # instances sharing storage and a PostgreSQL meta DB also lock repositories there
    across = AdvisoryLocks(postgres.url) if postgres is not None and driver is None else None
    locks = KeyedLocks(shared / "locks" if shared else None, across)
    docker = "docker2s2" in config.http.compat
    storage = config.storage
    # one set of caps for every root: a client's sessions count wherever they are
    per_client = config.http.maxUploadSessionsPerClient
    caps = SessionCaps(
        config.http.maxUploadSessionsPerRepository,
        per_client,
        config.http.workers,
        # counted in PostgreSQL when instances share it, so the cap holds across them
        SharedUploadSessions(across) if across is not None and per_client is not None else None,
    )
    main = driver or root_driver(storage)
    routes = {}
    on_s3 = [root for root in (storage, *(storage.subPaths or {}).values()) if root.on_s3()]
    index = dedupe_index(shared, across) if on_s3 and driver is None else None
    for key, sub in (storage.subPaths or {}).items():
        sub_driver = MemoryDriver() if driver else root_driver(sub)
        routes[key.removeprefix("/")] = _root(sub, sub_driver, locks, docker, caps, index)
    registries = Registries(_root(storage, main, locks, docker, caps, index), routes)
    for registry in registries.roots():
        registry.serves = partial(registries.serves, registry)
    _limit_repositories(config, registries)
    return registries


def _limit_repositories(config: Config, registries: Registries) -> None:
    # zot counts every repository against storage.maxRepos; a sub-path's own maxRepos
    # (accepted by zot's schema) bounds that root alone.
    if config.storage.maxRepos:
        every = RepositoryLimit(
            "storage.maxRepos", config.storage.maxRepos, registries.repositories
        )
        for registry in registries.roots():
            registry.repository_limits.append(every)
    for key, sub in (config.storage.subPaths or {}).items():
        if sub.maxRepos:
            registry = registries.routes[key.removeprefix("/")]
            registry.repository_limits.append(
                RepositoryLimit(
                    f"storage.subPaths.{key}.maxRepos", sub.maxRepos, registry.repositories
                )
            )
