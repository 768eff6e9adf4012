"""The storage driver interface: a small, dumb key/byte store that the registry layer builds on.

Paths are ``/``-separated keys relative to the driver's root (``"a/b/blobs/sha256/ab12…"``);
``""`` is the root. Drivers know nothing of OCI: layout, locking and digests live above them.
Every driver must pass the shared suite in ``tests/storage/driver_suite.py``.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from ocireg.storage.socketbody import SocketBody


class StorageError(Exception):
    """Base class of driver errors."""


class PathNotFoundError(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path!r}")
        self.path = path


class InvalidPathError(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"invalid storage path: {path!r}")
        self.path = path


class InvalidOffsetError(StorageError):
    def __init__(self, path: str, offset: int) -> None:
        super().__init__(f"invalid offset {offset} for {path!r}")
        self.path = path
        self.offset = offset


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    mod_time: float
    is_dir: bool
    links: int = 1  # names sharing this content (hard links); 1 where there are none


class FileWriter(ABC):
    """A streaming writer. Nothing it wrote is visible at its path before :meth:`commit`
    (for a new file); :meth:`cancel` discards everything this writer wrote."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Bytes in the file so far, including what it held before an append."""

    @abstractmethod
    def write(self, data: bytes) -> int: ...

    @abstractmethod
    def commit(self) -> None:
        """Make the content durable and visible. The writer is closed afterwards."""

    @abstractmethod
    def cancel(self) -> None:
        """Undo this writer's writes (a new file disappears, an appended one is cut back)."""

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.cancel()


def check_path(path: str) -> str:
    """Reject keys that could escape the root or are not normalised."""
    if path == "":
        return path
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in path:
        raise InvalidPathError(path)
    return path


def join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


class StorageDriver(ABC):
    name: str = "abstract"
    # Whether :meth:`move` gives ``dest`` a new modification time, so that a caller need not
    # :meth:`touch` it afterwards (on S3 a move is a copy, and a touch would be a second one).
    move_renews_mtime: bool = False
    # Whether asking whether a file is there is a network request (an S3 HEAD) rather than a
    # stat(): the registry then remembers the blobs a push found (see registry/index.py).
    blob_check_is_request: bool = False

    @abstractmethod
    def get_content(self, path: str) -> bytes: ...

    @abstractmethod
    def put_content(self, path: str, data: bytes) -> None:
        """Write a whole file atomically: readers see the old content or the new, never half."""

    def put_new_content(self, path: str, data: bytes) -> bool:
        """``put_content`` unless a file is at ``path``, which is then left as it is (its
        modification time too); whether it wrote. Callers hold a lock that keeps other
        writers of ``path`` out (a driver that can ask storage to do both at once does)."""
        if not check_path(path):
            raise InvalidPathError(path)
        if self.exists(path):
            return False
        self.put_content(path, data)
        return True

    def put_pieces(self, path: str, pieces: Iterable[bytes]) -> None:
        """``put_content`` of the pieces joined, written one after another without joining
        them first (a large file kept in parts is not copied once more to be written)."""
        writer = self.writer(path)
        try:
            for piece in pieces:
                writer.write(piece)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()

    @abstractmethod
    def reader(self, path: str, offset: int = 0) -> BinaryIO: ...

    @abstractmethod
    def writer(self, path: str, append: bool = False) -> FileWriter: ...

    @abstractmethod
    def stat(self, path: str) -> FileInfo: ...

    @abstractmethod
    def list(self, path: str) -> list[str]:
        """Direct children of a directory, as full keys, sorted."""

    @abstractmethod
    def move(self, source: str, dest: str) -> None:
        """Rename, replacing ``dest`` atomically if it exists."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove a file or a whole directory tree."""

    @abstractmethod
    def link(self, source: str, dest: str) -> None:
        """Make ``dest`` hold the same content as ``source`` (a hard link where possible)."""

    @abstractmethod
    def touch(self, path: str) -> None:
        """Set a file's modification time to now: GC ages content by it, so a blob that is
        mounted or pushed again must look new."""

    def own_stat(self, path: str) -> FileInfo:
        """``stat`` of the name itself, whatever it stands for: the same as ``stat`` but on a
        root that dedupes by reference, where a placeholder's are its own (zero bytes, its own
        age) even when its content is gone (GC ages and removes names)."""
        return self.stat(path)

    def exists(self, path: str) -> bool:
        try:
            self.stat(path)
        except PathNotFoundError:
            return False
        return True

    def children(self, path: str) -> builtins.list[str]:
        """Like :meth:`list`, but empty when ``path`` does not exist (for sweeps over storage
        that must not care whether a folder was ever made or was just removed)."""
        try:
            return self.list(path)
        except PathNotFoundError:
            return []

    def remove_empty_dir(self, path: str) -> bool:
        """Remove the directory at ``path`` if nothing is in it; whether it is gone now (False
        when something is in it). A driver without directories of its own (memory, object
        stores) has nothing to remove: a folder is gone with its last file."""
        return not self.children(path)

    def walk(self, path: str) -> Iterator[FileInfo]:
        """Every entry below ``path``, depth first, parents before children."""
        for child in self.list(path):
            info = self.stat(child)
            yield info
            if info.is_dir:
                yield from self.walk(child)

    def redirect_url(self, path: str, method: str) -> str | None:
        """A URL clients may fetch the content from directly, if the backend offers one."""
        return None

    def socket_body(self, path: str, offset: int, length: int) -> SocketBody | None:
        """``length`` bytes of ``path`` from ``offset`` still in a plain-TCP socket of their
        own (``ocireg.storage.socketbody``), for a relay to the client; None where the
        backend offers no such thing (then :meth:`reader`). Blocking."""
        return None

    def local_path(self, path: str) -> Path | None:
        """The file on local disk holding ``path``, when there is one (enables sendfile)."""
        return None

    def sweep_temporary(self, max_age: float) -> int:
        """Remove temporary files that crashed writers left (none that a live writer, in any
        process sharing the storage, may still be filling); returns how many. Blocking."""
        return 0
