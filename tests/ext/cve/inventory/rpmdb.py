"""An rpm sqlite database written the way rpm writes one, for the inventory's rpm reader.

rpm (lib/header.c, headerExport) stores each header as: the number of index entries and the
length of the data store (big-endian int32 each); the index entries (tag, type, offset, count);
the data store. The first entry is the immutable region (tag 63, type BIN, 16 bytes at the end
of the store: a copy of that entry with a negative offset). The table is rpm's sqlite backend's
(lib/backend/sqlite.c): ``Packages(hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)``.
This writer is independent of the reader under test: it shares no code with it.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path

BIN, INT32, STRING, STRING_ARRAY, I18NSTRING = 7, 4, 6, 8, 9
REGION_TAG = 63
NAME, VERSION, RELEASE, EPOCH, SUMMARY, LICENSE, ARCH, SOURCERPM = (
    1000,
    1001,
    1002,
    1003,
    1004,
    1014,
    1022,
    1044,
)
BASENAMES = 1117


@dataclass(frozen=True)
class Rpm:
    name: str
    version: str
    release: str
    arch: str
    source_rpm: str
    epoch: int | None = None
    summary: str = ""
    license: str = ""


def _align(store: bytearray, size: int) -> None:
    while len(store) % size:
        store.append(0)


def header_blob(rpm: Rpm) -> bytes:
    entries: list[tuple[int, int, int, int]] = []
    store = bytearray()

    def string(tag: int, value: str, kind: int = STRING) -> None:
        entries.append((tag, kind, len(store), 1))
        store.extend(value.encode() + b"\0")

    string(NAME, rpm.name)
    string(VERSION, rpm.version)
    string(RELEASE, rpm.release)
    if rpm.epoch is not None:
        _align(store, 4)
        entries.append((EPOCH, INT32, len(store), 1))
        store.extend(struct.pack(">i", rpm.epoch))
    string(SUMMARY, rpm.summary or rpm.name, I18NSTRING)
    string(LICENSE, rpm.license or "GPLv2+")
    string(ARCH, rpm.arch)
    if rpm.source_rpm:
        string(SOURCERPM, rpm.source_rpm)
    entries.append((BASENAMES, STRING_ARRAY, len(store), 2))
    store.extend(b"bin\0lib\0")
    entries.sort()
    count = len(entries) + 1
    trailer = struct.pack(">iiii", REGION_TAG, BIN, -(count * 16), 16)
    region = (REGION_TAG, BIN, len(store), 16)
    store.extend(trailer)
    index = b"".join(struct.pack(">iiii", *entry) for entry in [region, *entries])
    return struct.pack(">ii", count, len(store)) + index + bytes(store)


def write_rpmdb(path: Path, rpms: list[Rpm], extra_blobs: tuple[bytes, ...] = ()) -> bytes:
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
        )
        connection.execute("CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL)")
        for blob in [*map(header_blob, rpms), *extra_blobs]:
            connection.execute("INSERT INTO Packages (blob) VALUES (?)", (blob,))
    connection.close()
    return path.read_bytes()
