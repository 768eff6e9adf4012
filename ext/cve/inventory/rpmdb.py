"""rpm's sqlite database (rpm >= 4.16: RHEL/Rocky/Alma 9, Fedora 33+, openSUSE), read without
an rpm library.

The ``Packages`` table holds one header blob a package: a big-endian ``int32`` count of index
entries and ``int32`` length of the data store, then the entries (tag, type, offset, count:
four ``int32``), then the data store. The database is opened from memory
(``sqlite3.Connection.deserialize``), never written to disk. The older Berkeley DB
(``Packages``) and ndb (``Packages.db``) formats are not read.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
from collections.abc import Iterator

from .records import Record

log = logging.getLogger(__name__)

PATHS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")

TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_ARCH = 1022
TAG_SOURCERPM = 1044
WANTED_TAGS = {TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH, TAG_SOURCERPM}

TYPE_INT32 = 4
TYPE_STRING = 6
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9
STRING_TYPES = {TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING}

MAX_INDEX_ENTRIES = 0x0000FFFF  # rpm's own limits on a header (lib/header.c)
MAX_DATA_LENGTH = 0x0FFFFFFF


class HeaderError(ValueError):
    pass


def wants(path: str) -> bool:
    return path in PATHS


def header_tags(blob: bytes) -> dict[int, str | int]:
    """The tags the inventory needs from one header blob: strings as str, INT32 as int."""
    if len(blob) < 8:
        raise HeaderError("header shorter than its preamble")
    count, length = struct.unpack_from(">ii", blob, 0)
    store = 8 + 16 * count
    if not 0 < count <= MAX_INDEX_ENTRIES or not 0 <= length <= MAX_DATA_LENGTH:
        raise HeaderError("header counts out of range")
    if store + length > len(blob):
        raise HeaderError("header longer than its blob")
    tags: dict[int, str | int] = {}
    for tag, kind, offset, items in struct.iter_unpack(">iiii", blob[8:store]):
        if tag not in WANTED_TAGS or not 0 <= offset < length or items < 1:
            continue
        start = store + offset
        if kind in STRING_TYPES:
            end = blob.find(b"\0", start, store + length)
            if end < 0:
                raise HeaderError(f"tag {tag}: string not terminated")
            tags[tag] = blob[start:end].decode("utf-8", "replace")
        elif kind == TYPE_INT32 and start + 4 <= store + length:
            tags[tag] = struct.unpack_from(">i", blob, start)[0]
    return tags


def source_package(source_rpm: str) -> tuple[str, str]:
    """``openssl-3.0.7-27.el9.src.rpm`` -> (``openssl``, ``3.0.7-27.el9``)."""
    stem = source_rpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    name_version, _, release = stem.rpartition("-")
    name, _, version = name_version.rpartition("-")
    if not name or not version or not release:
        return "", ""
    return name, f"{version}-{release}"


def _record(tags: dict[int, str | int]) -> Record | None:
    name, version, release = (str(tags.get(t, "")) for t in (TAG_NAME, TAG_VERSION, TAG_RELEASE))
    if not name or not version or name == "gpg-pubkey":  # gpg-pubkey: imported keys
        return None
    full_version = f"{version}-{release}" if release else version
    source_name, source_version = source_package(str(tags.get(TAG_SOURCERPM, "")))
    epoch = tags.get(TAG_EPOCH)
    return Record(
        kind="rpm",
        name=name,
        version=full_version,
        source_name=source_name or name,
        source_version=source_version or full_version,
        arch=str(tags.get(TAG_ARCH, "")),
        epoch="" if epoch is None else str(epoch),
    )


def blobs(database: bytes) -> Iterator[bytes]:
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(database)
        for (blob,) in connection.execute("SELECT blob FROM Packages ORDER BY hnum"):
            if isinstance(blob, bytes):
                yield blob
    finally:
        connection.close()


def read(data: bytes) -> tuple[Record, ...]:
    records = []
    try:
        for blob in blobs(data):
            try:
                record = _record(header_tags(blob))
            except (HeaderError, struct.error):
                continue  # one damaged header does not hide the others
            if record is not None:
                records.append(record)
    except sqlite3.DatabaseError as error:
        log.warning("rpmdb not readable: %s", error)
        return ()
    return tuple(records)
