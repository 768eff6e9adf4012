"""``ocireg cve update``: OSV records from a directory, a zip (osv.dev's per-ecosystem
``all.zip``) or a URL of either kind of file, into the CVE tables, incrementally.

A record already held at the same or a later ``modified`` time is skipped; a document that is
not an OSV record is counted and named in the result, not fatal, since one bad file in an export
of thousands should not stop the rest.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .osv import Advisory, NotOsv, identity, parse
from .store import CveStore, ImportResult

MAX_RECORD = 64 * 1024 * 1024  # one OSV record larger than this is not one
DOWNLOAD_TIMEOUT = 300.0


class SourceError(ValueError):
    """A source that cannot be read at all (missing, not a zip or directory, a failed download)."""


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


def _from_zip(path: Path, rejected: Rejected) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{path}: not a readable zip ({exc})") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            if info.file_size > MAX_RECORD:
                rejected.add(info.filename, "too large")
                continue
            yield info.filename, archive.read(info)


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
    raise SourceError(f"{path}: neither a directory, a zip nor a .json file of OSV records")


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
                own, modified = identity(document)
                if reading.held.get(own, "") >= modified:
                    reading.unchanged += 1
                    continue
                yield parse(document)
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
    if not zipfile.is_zipfile(target):
        target = target.rename(target.with_suffix(".json"))
    return target


@dataclass(frozen=True)
class Update:
    source: str
    result: ImportResult
    rejected: Rejected


def update(store: CveStore, source: str) -> Update:
    """Import one source (a path or an http(s) URL) into ``store``."""
    reading = Reading(store.modified_times())
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
