"""In-memory driver: a first-class driver for tests and throwaway registries."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import BinaryIO

from ocireg.storage.driver import (
    FileInfo,
    FileWriter,
    InvalidOffsetError,
    InvalidPathError,
    PathNotFoundError,
    StorageDriver,
    check_path,
)


class _MemoryWriter(FileWriter):
    def __init__(self, driver: MemoryDriver, path: str, append: bool) -> None:
        self._driver = driver
        self._path = path
        self._append = append
        existing = driver._files.get(path) if append else None
        self._start = len(existing[0]) if existing else 0
        self._buffer = bytearray(existing[0]) if existing else bytearray()
        self._closed = False

    @property
    def size(self) -> int:
        return len(self._buffer)

    def write(self, data: bytes) -> int:
        self._buffer += data
        if self._append:  # an append writes through, like a file opened in append mode
            self._driver._store(self._path, bytes(self._buffer))
        return len(data)

    def commit(self) -> None:
        if not self._closed:
            self._closed = True
            self._driver._store(self._path, bytes(self._buffer))

    def cancel(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._append:
            self._driver._store(self._path, bytes(self._buffer[: self._start]))


class MemoryDriver(StorageDriver):
    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # tests age content by moving a clock of their own
        self._files: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.RLock()

    def _store(self, path: str, data: bytes) -> None:
        with self._lock:
            self._files[path] = (data, self._clock())

    def _is_dir(self, path: str) -> bool:
        prefix = f"{path}/" if path else ""
        return any(k.startswith(prefix) for k in self._files)

    def get_content(self, path: str) -> bytes:
        check_path(path)
        try:
            return self._files[path][0]
        except KeyError:
            raise PathNotFoundError(path) from None

    def put_content(self, path: str, data: bytes) -> None:
        check_path(path)
        if not path or self._is_dir(path):
            raise InvalidPathError(path)
        self._store(path, bytes(data))

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        data = self.get_content(path)
        if offset < 0 or offset > len(data):
            raise InvalidOffsetError(path, offset)
        return io.BytesIO(data[offset:])

    def writer(self, path: str, append: bool = False) -> FileWriter:
        check_path(path)
        if not path:
            raise InvalidPathError(path)
        return _MemoryWriter(self, path, append)

    def stat(self, path: str) -> FileInfo:
        check_path(path)
        with self._lock:
            entry = self._files.get(path)
            if entry is not None:
                return FileInfo(path, len(entry[0]), entry[1], False)
            if path == "" or self._is_dir(path):
                return FileInfo(path, 0, self._clock(), True)
        raise PathNotFoundError(path)

    def list(self, path: str) -> list[str]:
        check_path(path)
        prefix = f"{path}/" if path else ""
        with self._lock:
            children = {
                prefix + k[len(prefix) :].split("/", 1)[0]
                for k in self._files
                if k.startswith(prefix)
            }
        if not children and path:
            raise PathNotFoundError(path)
        return sorted(children)

    def move(self, source: str, dest: str) -> None:
        check_path(dest)
        with self._lock:
            entry = self._files.pop(check_path(source), None)
            if entry is None:
                raise PathNotFoundError(source)
            self._files[dest] = (entry[0], self._clock())

    def delete(self, path: str) -> None:
        check_path(path)
        prefix = f"{path}/"
        with self._lock:
            doomed = [k for k in self._files if k == path or k.startswith(prefix)]
            if not doomed:
                raise PathNotFoundError(path)
            for key in doomed:
                del self._files[key]

    def link(self, source: str, dest: str) -> None:
        self.put_content(dest, self.get_content(source))

    def touch(self, path: str) -> None:
        check_path(path)
        with self._lock:
            entry = self._files.get(path)
            if entry is None:
                raise PathNotFoundError(path)
            self._files[path] = (entry[0], self._clock())
