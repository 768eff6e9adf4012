"""Local-disk driver. New files are written to a temporary name and renamed into place.

A temporary name is ``<name>.tmp-<host>-<pid>-<random>``: a process that crashes leaves such
files behind, and :meth:`FilesystemDriver.sweep_temporary` removes them at the next start once
they are provably orphaned (their process, on this host, is gone) or old (nothing writes a
temporary file for long: each is filled in one go and renamed). Write errors name the file they
happened to, so a full disk is logged with its path.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import socket
import stat
import time
import uuid
from collections.abc import Iterator
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
# This host, in temporary names: a pid means something only on the host that wrote it.
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
log = logging.getLogger("ocireg.storage")


def temp_suffix(pid: int | None = None) -> str:
    """What a temporary name adds to its target's name (for ``pid``, this process by default)."""
    return f"{TEMP_MARK}{HOST}-{os.getpid() if pid is None else pid}-{uuid.uuid4().hex}"


def _orphaned(name: str, mod_time: float, max_age: float, now: float) -> bool:
    """Whether a temporary file is no process's any more: its writer, a process of this host,
    is gone; or, when that cannot be told (another host, an older name), it is ``max_age`` old."""
    if now - mod_time > max_age:
        return True
    parts = name.rsplit(TEMP_MARK, 1)[-1].split("-")
    if len(parts) != 3 or parts[0] != HOST or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def _named(error: OSError, path: str) -> OSError:
    """``error`` with the file it happened to (a write's error carries none)."""
    if error.filename is not None:
        return error
    named = OSError(error.errno, error.strerror, path)
    named.__cause__ = error
    return named


def _fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_OPEN_ATTEMPTS = 5


def _open_creating_parents(path: str, mode: Literal["ab", "xb"]) -> BinaryIO:
    """Unbuffered ``open`` that creates missing parent directories (tried when the open fails).
    Unbuffered, so a write that fails has no bytes left in a buffer to land later. Tried again
    when a parent vanishes between the two: GC removes a repository's folders once empty."""
    for _ in range(_OPEN_ATTEMPTS - 1):
        try:
            return open(path, mode, buffering=0)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
    return open(path, mode, buffering=0)


class _FileWriter(FileWriter):
    def __init__(self, target: str, append: bool, fsync: bool) -> None:
        self._target = target
        self._fsync = fsync
        self._append = append
        self._path = target if append else f"{target}{temp_suffix()}"
        self._file = _open_creating_parents(self._path, "ab" if append else "xb")
        self._start = self._file.tell()
        self._size = self._start
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        try:
            while view:  # an unbuffered write may take only part
                done = self._file.write(view)
                if not done:  # a regular file takes at least one byte or fails
                    raise OSError(errno.EIO, "write made no progress")
                self._size += done
                view = view[done:]
        except OSError as error:
            raise _named(error, self._path) from error
        return len(data)

    def commit(self) -> None:
        if self._closed:
            return
        try:
            if self._fsync:
                os.fsync(self._file.fileno())
            self._file.close()
            self._closed = True
            if not self._append:
                os.replace(self._path, self._target)
            if self._fsync:
                _fsync_dir(os.path.dirname(self._target))
        except OSError as error:
            raise _named(error, self._path) from error

    def cancel(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._append:
                os.ftruncate(self._file.fileno(), self._start)
        except OSError as error:  # not a regular file: nothing to cut back
            log.warning("cannot cut %s back to %d bytes: %s", self._path, self._start, error)
        finally:
            self._file.close()
        if not self._append:
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

    def remove_empty_dir(self, path: str) -> bool:
        if not path:
            return False  # never the root
        try:
            os.rmdir(self._os_path(path))
        except FileNotFoundError:
            return True
        except OSError:  # not empty, or not a directory
            return False
        return True

    def link(self, source: str, dest: str) -> None:
        src, dst = self._full(source), self._full(dest)
        if not src.is_file():
            raise PathNotFoundError(source)
        dst.parent.mkdir(parents=True, exist_ok=True)
        temp = dst.with_name(f"{dst.name}{temp_suffix()}")
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

    def sweep_temporary(self, max_age: float) -> int:
        removed, now = 0, time.time()
        for entry in _temporary_files(self._root):
            try:
                if not _orphaned(entry.name, entry.stat().st_mtime, max_age, now):
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue  # renamed into place or removed meanwhile
            removed += 1
        if removed:
            log.info("removed %d orphaned temporary files under %s", removed, self._root)
        return removed


def _temporary_files(folder: str) -> Iterator[os.DirEntry[str]]:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _temporary_files(entry.path)
        elif TEMP_MARK in entry.name:
            yield entry
