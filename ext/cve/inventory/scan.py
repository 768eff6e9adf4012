"""The inventory of an image: every layer streamed once, the wanted files read as they pass.

A layer is read on its own (:func:`read_layer`: what it adds, its whiteouts, the paths it
puts files and directories at) and then stacked on the layers below it (:func:`stacked`), so
that a layer's reading can be kept by its digest (``cache``) and an image built on an image
already scanned reads only its own layers.

Which files are wanted is decided from the tar header alone (path, type, mode, size), so
everything else is skipped without being read; each reader has a size cap, and a file over it
is skipped with a warning rather than read into memory.
"""

from __future__ import annotations

import logging
import tarfile
import zlib
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import IO, BinaryIO

from ..packages import Inventory, OsRelease, Package
from . import apk, dpkg, ecosystems, golang, java, npm, osrelease, python, rpmdb
from .cache import LayerCache, LayerRead, decode, encode
from .errors import InventoryError
from .layers import members
from .overlay import Entry, LayerChanges, Overlay, clean_path, whiteout_target
from .records import Placed, Record

log = logging.getLogger(__name__)

Opener = Callable[[], BinaryIO]
MiB = 1024 * 1024
GO_MIN_SIZE = 4096  # smaller than any Go binary; spares reading tiny scripts


@dataclass(frozen=True)
class Reader:
    name: str
    limit: int  # bytes read into memory at most; a bigger file is skipped
    parse: Callable[[bytes], tuple[Record, ...]]


DPKG = Reader("dpkg", 64 * MiB, dpkg.read)
APK = Reader("apk", 32 * MiB, apk.read)
RPM = Reader("rpm", 128 * MiB, rpmdb.read)  # held twice: the bytes, then sqlite's copy
PYTHON = Reader("python", 1 * MiB, python.read)
NPM = Reader("npm", 1 * MiB, npm.read)
JAVA = Reader("java", 128 * MiB, java.read)
OS_RELEASE_LIMIT = 64 * 1024


def reader_for(path: str, member: tarfile.TarInfo) -> Reader | None:
    if not member.isfile():
        return None
    if dpkg.wants(path):
        return DPKG
    if apk.wants(path):
        return APK
    if rpmdb.wants(path):
        return RPM
    if python.wants(path, is_file=True):
        return PYTHON
    if npm.wants(path):
        return NPM
    if java.wants(path):
        return JAVA
    return None


def _is_executable(member: tarfile.TarInfo) -> bool:
    return member.isfile() and member.mode & 0o111 != 0 and member.size >= GO_MIN_SIZE


def _bounded(stream: IO[bytes], member: tarfile.TarInfo, limit: int, path: str) -> bytes | None:
    if member.size > limit:
        log.warning("inventory: %s is %d bytes, over the %d read for it", path, member.size, limit)
        return None
    return stream.read(member.size)


def _placed(records: tuple[Record, ...], layer: str) -> tuple[Placed, ...]:
    return tuple(Placed(record, layer) for record in records)


def _entry(path: str, member: tarfile.TarInfo, tar: tarfile.TarFile, layer: str) -> Entry | None:
    if path in osrelease.PATHS:
        if member.issym():
            return Entry(link=member.linkname)
        stream = tar.extractfile(member) if member.isfile() else None
        data = stream and _bounded(stream, member, OS_RELEASE_LIMIT, path)
        return Entry(text=data.decode("utf-8", "replace")) if data else None
    reader = reader_for(path, member)
    if reader is not None:
        stream = tar.extractfile(member)
        data = stream and _bounded(stream, member, reader.limit, path)
        return Entry(records=_placed(reader.parse(data), layer)) if data else None
    if _is_executable(member) and (stream := tar.extractfile(member)) is not None:
        info = golang.build_info(stream)
        return Entry(records=_placed(golang.records(*info), layer)) if info else None
    return None


def read_layer(layer: str, opener: Opener) -> LayerRead:
    """What one layer holds, read without its lower layers (so that it can be kept per layer
    digest and stacked under every image sharing the layer: :func:`stacked`)."""
    read = LayerRead()
    # closed as soon as the layer is done or fails (a zstd process must not outlive it)
    with closing(members(opener)) as stream:
        for member, tar in stream:
            _take(member, tar, layer, read)
    return read


def _take(member: tarfile.TarInfo, tar: tarfile.TarFile, layer: str, read: LayerRead) -> None:
    """Note what one member of a layer adds, removes or may hide."""
    path = clean_path(member.name)
    if not path:
        return
    whiteout = whiteout_target(path)
    if whiteout is not None:
        target, opaque = whiteout
        (read.emptied if opaque else read.removed).add(target)
        return
    # whether this hides a lower entry is only known when stacked (:func:`stacked`)
    (read.directories if member.isdir() else read.files).add(path)
    if member.islnk():
        linked = clean_path(member.linkname)
        if linked in read.added:
            read.added[path] = read.added[linked]
        elif linked not in read.files:  # a file of a lower layer: resolved when stacked
            read.links[path] = linked
        return
    entry = _entry(path, member, tar, layer)
    if entry is not None:
        read.added[path] = entry


def stacked(read: LayerRead, overlay: Overlay) -> LayerChanges:
    """A layer's changes to the image below it: a new file hides what lower layers had at its
    path or under it; a new directory hides a lower file at its path (but merges with a lower
    directory); a hard link to a lower file is what that file is."""
    changes = LayerChanges(set(read.removed), set(read.emptied), dict(read.added))
    changes.removed.update(path for path in read.files if overlay.covers(path))
    changes.removed.update(path for path in read.directories if path in overlay.entries)
    for path, target in read.links.items():
        entry = overlay.entries.get(target)
        if entry is not None:
            changes.added[path] = entry
    return changes


def _cached_read(digest: str, opener: Opener, cache: LayerCache | None) -> LayerRead:
    kept = cache.get(digest) if cache is not None else None
    read = decode(kept, digest) if kept is not None else None
    if read is None:
        read = read_layer(digest, opener)
        if cache is not None:
            cache.put(digest, encode(read, digest))
    return read


def _os_release(overlay: Overlay) -> OsRelease | None:
    for path in osrelease.PATHS:
        entry = overlay.resolve(path)
        if entry is not None and entry.text:
            return osrelease.parse(entry.text)
    return None


def inventory(layers: Sequence[tuple[str, Opener]], cache: LayerCache | None = None) -> Inventory:
    """The packages of an image whose layers are given bottom first, as (digest, opener of
    the layer blob) pairs. Raises ``InventoryError`` when a layer cannot be read. With a
    ``cache``, a layer whose reading it keeps is not read again."""
    overlay = Overlay()
    for digest, opener in layers:
        try:
            overlay.apply(stacked(_cached_read(digest, opener, cache), overlay))
        except (OSError, EOFError, zlib.error, tarfile.TarError) as error:
            raise InventoryError(f"layer {digest}: {error}") from error
        except InventoryError as error:
            raise InventoryError(f"layer {digest}: {error}") from error
    os = _os_release(overlay)
    packages: list[Package] = [
        ecosystems.package(placed, path, os)
        for path, entry in sorted(overlay.entries.items())
        for placed in entry.records
    ]
    return Inventory(os=os, packages=tuple(packages))
