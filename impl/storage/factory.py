"""Drivers are registered by name and created from configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocireg.storage.driver import StorageDriver
from ocireg.storage.filesystem import FilesystemDriver
from ocireg.storage.memory import MemoryDriver

_FACTORIES: dict[str, Callable[..., StorageDriver]] = {
    "filesystem": FilesystemDriver,
    "memory": MemoryDriver,
}


def register(name: str, factory: Callable[..., StorageDriver]) -> None:
    _FACTORIES[name] = factory


def create(name: str, **params: Any) -> StorageDriver:
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown storage driver {name!r}; known: {sorted(_FACTORIES)}") from None
    return factory(**params)
