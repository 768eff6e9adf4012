"""The registry a configuration describes: storage driver, locks, Docker compatibility."""

from __future__ import annotations

from pathlib import Path

from ocireg.config import Config
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.store import Registry
from ocireg.registry.uploads import SessionCaps
from ocireg.storage.driver import StorageDriver
from ocireg.storage.filesystem import FilesystemDriver


def meta_dir(config: Config, driver: StorageDriver | None) -> Path | None:
    """Where processes sharing the root keep locks and scheduler state (none in memory)."""
    return config.resolved_root() / ".ocireg" if driver is None else None


def build_registry(config: Config, driver: StorageDriver | None = None) -> Registry:
    shared = meta_dir(config, driver)
    if driver is None:
        driver = FilesystemDriver(config.resolved_root(), fsync=config.storage.commit)
    locks = KeyedLocks(shared / "locks" if shared else None)
    docker = "docker2s2" in config.http.compat
    return Registry(
        driver,
        locks,
        docker_compat=docker,
        fsync=config.storage.commit,
        dedupe=config.storage.dedupe,
        upload_caps=SessionCaps(
            config.http.maxUploadSessionsPerRepository,
            config.http.maxUploadSessionsPerClient,
            config.http.workers,
        ),
    )
