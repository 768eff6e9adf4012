"""Image layers for the inventory tests: tar streams of real files, links and whiteouts."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from tests import tools

Compression = Literal["gzip", "zstd", "none"]
Layer = tuple[str, Callable[[], BinaryIO]]


@dataclass(frozen=True)
class File:
    path: str
    data: bytes = b""
    source: Path | None = None  # a file on this machine, streamed into the tar
    mode: int = 0o644
    directory: bool = False


@dataclass(frozen=True)
class Link:
    path: str
    target: str
    hard: bool = False


def whiteout(path: str) -> File:
    directory, _, name = path.rpartition("/")
    return File(f"{directory}/.wh.{name}" if directory else f".wh.{name}")


def opaque(directory: str) -> File:
    return File(f"{directory}/.wh..wh..opq")


def tree(source: Path, under: str) -> list[File]:
    """Every regular file below ``source``, placed at ``under`` in the image."""
    return [
        File(f"{under}/{path.relative_to(source).as_posix()}", source=path)
        for path in sorted(source.rglob("*"))
        if path.is_file() and not path.is_symlink()
    ]


def _add(tar: tarfile.TarFile, entry: File | Link) -> None:
    info = tarfile.TarInfo(entry.path)
    if isinstance(entry, Link):
        info.type = tarfile.LNKTYPE if entry.hard else tarfile.SYMTYPE
        info.linkname = entry.target
        tar.addfile(info)
    elif entry.directory:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    elif entry.source is not None:
        info.size = entry.source.stat().st_size
        info.mode = entry.mode
        with entry.source.open("rb") as stream:
            tar.addfile(info, stream)
    else:
        info.size = len(entry.data)
        info.mode = entry.mode
        tar.addfile(info, io.BytesIO(entry.data))


def tar_bytes(entries: Iterable[File | Link]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            _add(tar, entry)
    return buffer.getvalue()


def zstd_command() -> str:
    return tools.require_binary("zstd", "apt-get install zstd")


def compress(data: bytes, compression: Compression) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=1)
    if compression == "zstd":
        done = subprocess.run([zstd_command(), "-q", "-c"], input=data, capture_output=True)
        assert done.returncode == 0, done.stderr
        return done.stdout
    return data


def layer(entries: Iterable[File | Link], compression: Compression = "gzip") -> Layer:
    blob = compress(tar_bytes(entries), compression)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    return digest, lambda: io.BytesIO(blob)


def layer_file(entries: Iterable[File | Link], path: Path) -> Layer:
    """A plain tar layer written to ``path`` (for big files), opened from there."""
    with path.open("wb") as out, tarfile.open(fileobj=out, mode="w") as tar:
        for entry in entries:
            _add(tar, entry)
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest(), lambda: path.open("rb")


def os_release_files() -> list[File | Link]:
    """This machine's os-release, laid out as Debian does: a link in /etc to /usr/lib."""
    return [
        File("usr/lib/os-release", source=Path("/usr/lib/os-release")),
        Link("etc/os-release", "../usr/lib/os-release"),
    ]


def have(command: str) -> bool:
    return shutil.which(command) is not None
