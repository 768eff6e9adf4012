"""Local-disk driver. New files are written to a temporary name and renamed into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from pathlib import Path
from typing import BinaryIO, Literal

from ocireg.storage.driver import (
    FileInfo,
    FileWriter,
    InvalidOffsetError,
    PathNotFoundError,
    StorageDriver,
    check_path,
)

TEMP_MARK = ".tmp-"


def _fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_creating_parents(path: str, mode: Literal["ab", "xb"]) -> BinaryIO:
    """``open`` that creates missing parent directories (only tried when the open fails)."""
    try:
        return open(path, mode)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, mode)


class _FileWriter(FileWriter):
    def __init__(self, target: str, append: bool, fsync: bool) -> None:
        self._target = target
        self._fsync = fsync
        self._append = append
        if append:
            self._path = target
            self._file = _open_creating_parents(target, "ab")
        else:
            self._path = f"{target}{TEMP_MARK}{uuid.uuid4().hex}"
            self._file = _open_creating_parents(self._path, "xb")
        self._start = self._file.tell()
        self._size = self._start
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> int:
        written = self._file.write(data)
        self._size += written
        return written

    def commit(self) -> None:
        if self._closed:
            return
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())
        self._file.close()
        self._closed = True
        if not self._append:
            os.replace(self._path, self._target)
        if self._fsync:
            _fsync_dir(os.path.dirname(self._target))

    def cancel(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._append:
            self._file.truncate(self._start)
            self._file.close()
        else:
            self._file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)


class FilesystemDriver(StorageDriver):
    name = "filesystem"

    def __init__(self, root: str | os.PathLike[str], fsync: bool = False) -> None:
        self.root = Path(root).resolve()
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True)
        self._root = str(self.root)

    def _full(self, path: str) -> Path:
        check_path(path)
        return self.root / path if path else self.root

    def _os_path(self, path: str) -> str:
        """``_full`` as a string: the hot paths (reads, stats, writes) skip pathlib."""
        check_path(path)
        return os.path.join(self._root, path) if path else self._root

    def get_content(self, path: str) -> bytes:
        try:
            with open(self._os_path(path), "rb") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFoundError(path) from None

    def put_content(self, path: str, data: bytes) -> None:
        writer = self.writer(path)
        try:
            writer.write(data)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        full = self._os_path(path)
        try:
            handle = open(full, "rb")  # noqa: SIM115 - returned to the caller
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFoundError(path) from None
        size = os.fstat(handle.fileno()).st_size
        if offset < 0 or offset > size:
            handle.close()
            raise InvalidOffsetError(path, offset)
        handle.seek(offset)
        return handle

    def writer(self, path: str, append: bool = False) -> FileWriter:
        if not path:
            raise PathNotFoundError(path)
        return _FileWriter(self._os_path(path), append, self.fsync)

    def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self._os_path(path))
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFoundError(path) from None
        is_dir = stat.S_ISDIR(st.st_mode)
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir, st.st_nlink)

    def list(self, path: str) -> list[str]:
        full = self._full(path)
        try:
            names = [e.name for e in os.scandir(full) if TEMP_MARK not in e.name]
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFoundError(path) from None
        prefix = f"{path}/" if path else ""
        return sorted(prefix + n for n in names)

    def move(self, source: str, dest: str) -> None:
        src, dst = self._full(source), self._full(dest)
        if not src.exists():
            raise PathNotFoundError(source)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        if self.fsync:
            _fsync_dir(dst.parent)

    def delete(self, path: str) -> None:
        full = self._full(path)
        if full.is_dir() and not full.is_symlink():
            shutil.rmtree(full)
            return
        try:
            full.unlink()
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFoundError(path) from None

    def link(self, source: str, dest: str) -> None:
        src, dst = self._full(source), self._full(dest)
        if not src.is_file():
            raise PathNotFoundError(source)
        dst.parent.mkdir(parents=True, exist_ok=True)
        temp = dst.with_name(f"{dst.name}{TEMP_MARK}{uuid.uuid4().hex}")
        try:
            os.link(src, temp)
        except OSError:
            shutil.copyfile(src, temp)
        os.replace(temp, dst)
        if self.fsync:
            _fsync_dir(dst.parent)

    def touch(self, path: str) -> None:
        full = self._full(path)
        if not full.is_file():
            raise PathNotFoundError(path)
        os.utime(full)

    def local_path(self, path: str) -> Path | None:
        return self._full(path)
