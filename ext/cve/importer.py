"""``ocireg cve update``: OSV records from a directory, a zip (osv.dev's per-ecosystem
``all.zip``), a tar (plain or gzip) of OSV JSON files, a URL of such a file, or an OCI artifact
in a registry (``oci://``: :mod:`.artifact`), into the CVE tables, incrementally.

A record already held at the same or a later ``modified`` time is skipped; a document that is
not an OSV record is counted and named in the result, not fatal, since one bad file in an export
of thousands should not stop the rest.
"""

from __future__ import annotations

import itertools
import json
import os
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from . import artifact
from .errors import SourceError
from .osv import Advisory, NotOsv, identity, parse
from .store import CveStore, ImportResult

MAX_RECORD = 64 * 1024 * 1024  # one OSV record larger than this is not one
DOWNLOAD_TIMEOUT = 300.0


@dataclass
class Rejected:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, where: str, why: str) -> None:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(f"{where}: {why}")


def _documents(data: bytes, where: str, rejected: Rejected) -> Iterator[Any]:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        rejected.add(where, f"not JSON ({exc})")
        return
    yield from document if isinstance(document, list) else [document]


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... name length, extra length


def _member(archive: zipfile.ZipFile, raw: BinaryIO, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes. A plain or deflated member (what exports are) is read here, its CRC
    checked: ``ZipFile.read`` costs three times as much per small member, which is most of
    reading an export of 100,000 records again."""
    if info.flag_bits & 1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return archive.read(info)  # encrypted, or another method: zipfile's own answer
    raw.seek(info.header_offset)
    signature, name, extra = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"{info.filename}: bad local file header")
    raw.seek(name + extra, os.SEEK_CUR)
    data = raw.read(info.compress_size)
    if info.compress_type == zipfile.ZIP_DEFLATED:
        inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        data = inflate.decompress(data, info.file_size + 1)
        if not inflate.eof or len(data) != info.file_size:
            raise zipfile.BadZipFile(f"{info.filename}: not the size its directory says")
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise zipfile.BadZipFile(f"{info.filename}: bad CRC or size")
    return data


def _from_zip(path: Path, rejected: Rejected) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(path)
        raw = path.open("rb")
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{path}: not a readable zip ({exc})") from None
    with archive, raw:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            if info.file_size > MAX_RECORD:
                rejected.add(info.filename, "too large")
                continue
            try:
                data = _member(archive, raw, info)
            except (zipfile.BadZipFile, zlib.error, OSError) as exc:
                raise SourceError(f"{path}: not a readable zip ({exc})") from None
            yield info.filename, data


def _from_tar(path: Path, rejected: Rejected) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                if not member.isfile() or not member.name.endswith(".json"):
                    continue
                if member.size > MAX_RECORD:
                    rejected.add(member.name, "too large")
                    continue
                stream = archive.extractfile(member)
                if stream is not None:
                    yield member.name, stream.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceError(f"{path}: not a readable tar ({exc})") from None


def _from_directory(path: Path) -> Iterator[tuple[str, bytes]]:
    for file in sorted(path.rglob("*.json")):
        if file.is_file():
            yield str(file), file.read_bytes()


def _files(path: Path, rejected: Rejected) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        return _from_directory(path)
    if path.is_file() and zipfile.is_zipfile(path):
        return _from_zip(path, rejected)
    if path.is_file() and path.suffix == ".json":
        return iter([(str(path), path.read_bytes())])
    if path.is_file() and tarfile.is_tarfile(path):
        return _from_tar(path, rejected)
    raise SourceError(f"{path}: neither a directory, a zip, a tar nor a .json file of OSV records")


@dataclass
class Reading:
    """What reading a source found besides the records it passes on."""

    held: dict[str, str]  # id -> modified of the records already imported
    unchanged: int = 0
    rejected: Rejected = field(default_factory=Rejected)


def advisories(path: Path, reading: Reading) -> Iterator[Advisory]:
    """The records of ``path`` newer than those held; a record held at the same or a later
    ``modified`` is only counted (parsing one, its CVSS scores, costs more than reading it)."""
    for where, data in _files(path, reading.rejected):
        for document in _documents(data, where, reading.rejected):
            try:
                known = identity(document)
                if reading.held.get(known[0], "") >= known[1]:
                    reading.unchanged += 1
                    continue
                yield parse(document, known)
            except NotOsv as exc:
                reading.rejected.add(where, str(exc))


def _download(url: str, into: Path) -> Path:
    import httpx

    target = into / "osv-download"
    try:
        with httpx.stream("GET", url, timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as response:
            if response.status_code != 200:
                raise SourceError(f"{url}: answered HTTP {response.status_code}")
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {exc}") from None
    if not zipfile.is_zipfile(target) and not tarfile.is_tarfile(target):
        target = target.rename(target.with_suffix(".json"))
    return target


@dataclass(frozen=True)
class Update:
    source: str
    result: ImportResult
    rejected: Rejected
    artifact: str = ""  # an OCI source: the digest of the artifact's manifest
    artifact_unchanged: bool = False  # ... the one imported last time: nothing was pulled


NOTHING = ImportResult(0, 0, 0, frozenset())


def _from_artifact(store: CveStore, source: str, reading: Reading) -> Update:
    """An OCI artifact's layers, pulled unless the artifact is the one imported last time from
    this source (its manifest digest is kept in ``cve_state``)."""
    key = f"artifact:{source}"
    with tempfile.TemporaryDirectory(prefix="ocireg-osv-") as temporary:
        digest, files = artifact.pull(source, Path(temporary), store.state(key))
        if not files:
            return Update(source, NOTHING, reading.rejected, digest, artifact_unchanged=True)
        records = itertools.chain.from_iterable(advisories(file, reading) for file in files)
        result = store.import_advisories(records)
    store.set_state(key, digest)
    result = replace(result, unchanged=result.unchanged + reading.unchanged)
    return Update(source, result, reading.rejected, digest)


def update(store: CveStore, source: str) -> Update:
    """Import one source (a path, an http(s) URL or an ``oci://`` reference) into ``store``."""
    reading = Reading(store.modified_times())
    if artifact.is_oci(source):
        return _from_artifact(store, source, reading)
    if source.startswith(("http://", "https://")):
        with tempfile.TemporaryDirectory(prefix="ocireg-osv-") as temporary:
            path = _download(source, Path(temporary))
            result = store.import_advisories(advisories(path, reading))
    else:
        path = Path(source)
        if not path.exists():
            raise SourceError(f"{source}: no such file or directory")
        result = store.import_advisories(advisories(path, reading))
    result = replace(result, unchanged=result.unchanged + reading.unchanged)
    return Update(source, result, reading.rejected)
