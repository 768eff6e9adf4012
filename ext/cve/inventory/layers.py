"""Reading a layer blob as a stream of tar members, whatever its compression.

OCI layers are tar, tar+gzip or tar+zstd; the media type is not trusted (Docker and some tools
mislabel), the first bytes are. The tar is read in stream mode: every member once, in order,
nothing written to disk, and ``TarFile.members`` emptied as we go (stream mode otherwise keeps
every header of the layer in memory).
"""

from __future__ import annotations

import gzip
import importlib
import io
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any, BinaryIO, Protocol

from .errors import InventoryError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1024 * 1024


class ByteStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Prefixed:
    """A read-only stream that gives back the bytes already read for sniffing, then the rest."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0:
            data, self._head = self._head + self._rest.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        if len(data) < size:
            data += self._rest.read(size - len(data))
        return data

    def seek(self, offset: int, /) -> int:
        raise io.UnsupportedOperation("a layer is read as a stream")


def _read_head(stream: IO[bytes], size: int) -> bytes:
    head = b""
    while len(head) < size:
        more = stream.read(size - len(head))
        if not more:
            break
        head += more
    return head


@contextmanager
def _zstd_stream(raw: Prefixed) -> Iterator[IO[bytes]]:
    """A zstd decompressor: the ``zstandard`` module when installed, else the ``zstd`` command
    (Debian's, fed through a pipe: the blob still never touches the disk)."""
    try:
        module: Any = importlib.import_module("zstandard")
    except ImportError:
        module = None
    if module is not None:
        # zstd:chunked layers are many frames: read across them all
        with module.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as reader:
            yield reader
        return
    command = shutil.which("zstd")
    if command is None:
        raise InventoryError("a zstd layer needs the zstandard module or the zstd command")
    with subprocess.Popen(
        [command, "-dcq"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        feeder = threading.Thread(target=_feed, args=(raw, process.stdin), daemon=True)
        feeder.start()
        try:
            yield process.stdout
            # the tar ends before the stream does (padding): only zstd's exit status tells
            # whether the stream was whole, so read it to its end
            while process.stdout.read(CHUNK):
                pass
            if process.wait() != 0:
                raise InventoryError("the zstd stream is corrupt or cut short")
        finally:
            process.stdout.close()
            process.kill()
            feeder.join()


def _feed(source: Prefixed, sink: IO[bytes]) -> None:
    try:
        while chunk := source.read(CHUNK):
            sink.write(chunk)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the reader stopped early (an error, or it has all it needs)
    finally:
        with suppress(OSError):
            sink.close()


@contextmanager
def decompressed(blob: BinaryIO) -> Iterator[ByteStream]:
    head = _read_head(blob, 4)
    raw = Prefixed(head, blob)
    if head.startswith(GZIP_MAGIC):
        with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
            yield unzipped
    elif head.startswith(ZSTD_MAGIC):
        with _zstd_stream(raw) as unzstd:
            yield unzstd
    else:
        yield raw


def members(
    opener: Callable[[], BinaryIO],
) -> Generator[tuple[tarfile.TarInfo, tarfile.TarFile], None, None]:
    """Every member of a layer, in order; read a member's data through the TarFile before
    asking for the next one (stream mode cannot go back)."""
    try:
        with (
            opener() as blob,
            decompressed(blob) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,  # type: ignore[call-overload]
        ):
            while (member := tar.next()) is not None:
                tar.members = []
                yield member, tar
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as error:
        raise InventoryError(f"not a readable tar layer: {error}") from error
