"""Import of real OSV advisories and matching of inventories against them: every expected
match and every expected non-match (a fixed version, another release, a withdrawn advisory)."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocireg.ext.cve.errors import SourceError
from ocireg.ext.cve.importer import update
from ocireg.ext.cve.matcher import match, stored
from ocireg.ext.cve.osv import Advisory, parse
from ocireg.ext.cve.packages import Inventory
from ocireg.ext.cve.scanning import rematch
from ocireg.ext.cve.store import CveStore
from tests.ext import cveimages, osvdata


@pytest.fixture
def store() -> CveStore:
    store = CveStore(":memory:")
    store.import_advisories(parse(record) for record in osvdata.ALL)
    return store


def found(store: CveStore, inventory: Inventory) -> dict[str, tuple[str, str, str]]:
    """CVE -> (package, installed, fixed)."""
    return {
        f.cve: (f.package, f.installed, f.fixed) for f in match(store, stored(inventory.packages))
    }


def test_each_expected_match(store: CveStore) -> None:
    assert found(store, cveimages.BULLSEYE) == {
        "CVE-2022-4304": ("libssl1.1", "1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4"),
        "CVE-2022-4450": ("libssl1.1", "1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4"),
        "CVE-2023-0215": ("libssl1.1", "1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4"),
        "CVE-2023-0286": ("libssl1.1", "1.1.1n-0+deb11u3", "1.1.1n-0+deb11u4"),
        "CVE-2023-32681": ("Requests", "2.30.0", "2.31.0"),  # PYSEC and GHSA: one CVE
        "CVE-2020-28498": ("elliptic", "6.5.3", "6.5.4"),
        "CVE-2020-14040": ("golang.org/x/text", "v0.3.2", "0.3.3"),
        "CVE-2021-44228": ("org.apache.logging.log4j:log4j-core", "2.14.1", "2.15.0"),
    }
    assert found(store, cveimages.ALPINE_317) == {
        "CVE-2023-0286": ("libcrypto3", "3.0.7-r2", "3.0.8-r0")
    }


def test_fixed_versions_and_other_releases_do_not_match(store: CveStore) -> None:
    assert found(store, cveimages.BULLSEYE_FIXED) == {}
    assert found(store, cveimages.BOOKWORM) == {}
    assert found(store, cveimages.ALPINE_318) == {}


def test_import_is_incremental_by_id_and_modified(store: CveStore) -> None:
    again = store.import_advisories(parse(record) for record in osvdata.ALL)
    assert (again.stored, again.unchanged, again.touched) == (0, len(osvdata.ALL), frozenset())
    newer = dict(osvdata.GO_2020_0015, modified="2024-01-01T00:00:00Z")
    result = store.import_advisories([parse(newer)])
    assert (result.stored, result.touched) == (1, frozenset({("Go", "golang.org/x/text")}))


def test_a_record_twice_in_one_export_keeps_its_newer_copy(tmp_path: Path) -> None:
    """Written in batches, a record met again later in the same import still replaces the
    copy met first, whether that is written yet or not."""
    older = dict(osvdata.GO_2020_0015, modified="2019-01-01T00:00:00Z")
    newer = osvdata.withdrawn(osvdata.GO_2020_0015, "2024-01-01T00:00:00Z")
    store = CveStore(":memory:")
    result = store.import_advisories(parse(record) for record in [older, *osvdata.ALL, newer])
    assert (result.stored, result.withdrawn) == (len(osvdata.ALL) + 2, 1)
    assert store.modified_times()[newer["id"]] == "2024-01-01T00:00:00.000000Z"
    assert "CVE-2020-14040" not in found(store, cveimages.BULLSEYE)  # the newer is withdrawn


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {row[0] for row in rows if not row[0].startswith("sqlite_")}


def test_a_first_import_builds_its_indexes_once_and_a_failed_one_keeps_them(
    tmp_path: Path,
) -> None:
    """A first import drops the advisory tables' indexes and builds them at its end, inside
    its transaction: a failed one leaves them (and nothing else) behind."""
    path = tmp_path / "meta.db"
    store = CveStore(path)
    indexes = _indexes(path)

    def failing() -> Iterator[Advisory]:
        yield from (parse(record) for record in osvdata.ALL)
        raise SourceError("the export breaks off")

    with pytest.raises(SourceError):
        store.import_advisories(failing())
    assert (store.advisory_count(), _indexes(path)) == (0, indexes)
    store.import_advisories(parse(record) for record in osvdata.ALL)
    assert (store.advisory_count(), _indexes(path)) == (len(osvdata.ALL), indexes)
    assert "CVE-2023-0286" in found(store, cveimages.ALPINE_317)


def test_a_withdrawn_advisory_matches_nothing_and_stays_withdrawn(store: CveStore) -> None:
    gone = osvdata.withdrawn(osvdata.GO_2020_0015, "2024-02-01T00:00:00Z")
    result = store.import_advisories([parse(gone)])
    assert (result.stored, result.withdrawn) == (1, 1)
    assert "CVE-2020-14040" not in found(store, cveimages.BULLSEYE)
    older = store.import_advisories([parse(osvdata.GO_2020_0015)])  # an old export again
    assert older.unchanged == 1
    assert "CVE-2020-14040" not in found(store, cveimages.BULLSEYE)


def test_an_update_rematches_only_the_images_it_can_affect(store: CveStore) -> None:
    for digest, inventory in [("sha256:a", cveimages.BULLSEYE), ("sha256:b", cveimages.ALPINE_317),
                              ("sha256:c", cveimages.BOOKWORM)]:  # fmt: skip
        packages = stored(inventory.packages)
        store.record_scan(digest, packages, match(store, packages))
    gone = osvdata.withdrawn(osvdata.GO_2020_0015, "2024-02-01T00:00:00Z")
    assert rematch(store, store.import_advisories([parse(gone)]).touched) == 1
    assert store.scan_counts() == {"sha256:a": 2, "sha256:b": 1, "sha256:c": 1}
    assert "CVE-2020-14040" not in {row.cve for row in store.findings("sha256:a")}
    assert store.images_with("CVE-2023-0286") == {"sha256:a", "sha256:b"}
    assert store.images_with("cve-2023-0286") == {"sha256:a", "sha256:b"}


def _write_export(where: Path) -> None:
    for record in osvdata.ALL:
        (where / f"{record['id']}.json").write_text(json.dumps(record))


def test_import_from_a_directory_and_a_zip(tmp_path: Path) -> None:
    directory = tmp_path / "osv"
    directory.mkdir()
    _write_export(directory)
    (directory / "broken.json").write_text("{not json")
    (directory / "other.json").write_text('{"no": "id"}')
    first = update(CveStore(":memory:"), str(directory))
    assert first.result.stored == len(osvdata.ALL)
    assert first.rejected.count == 2
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for record in osvdata.ALL:
            out.writestr(f"{record['id']}.json", json.dumps(record))
    store = CveStore(":memory:")
    assert update(store, str(archive)).result.stored == len(osvdata.ALL)
    assert store.advisory_count() == len(osvdata.ALL)


def _zip(path: Path, method: int) -> None:
    with zipfile.ZipFile(path, "w", method) as out:
        out.writestr("README.txt", "not a record")
        for record in osvdata.ALL:
            out.writestr(f"records/{record['id']}.json", json.dumps(record))


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
def test_a_zip_reads_the_same_however_compressed(tmp_path: Path, method: int) -> None:
    _zip(tmp_path / "all.zip", method)
    store = CveStore(":memory:")
    assert update(store, str(tmp_path / "all.zip")).result.stored == len(osvdata.ALL)
    expected = CveStore(":memory:")
    expected.import_advisories(parse(record) for record in osvdata.ALL)
    assert store.modified_times() == expected.modified_times()
    assert found(store, cveimages.BULLSEYE) == found(expected, cveimages.BULLSEYE)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_a_damaged_zip_member_refuses_the_whole_import(tmp_path: Path, method: int) -> None:
    archive = tmp_path / "all.zip"
    _zip(archive, method)
    with zipfile.ZipFile(archive) as reading:
        last = reading.infolist()[-1]
    data = bytearray(archive.read_bytes())
    start = last.header_offset + 30 + len(last.filename.encode())
    data[start + 20] ^= 0xFF  # a byte of the last record's stored or deflated data
    archive.write_bytes(bytes(data))
    store = CveStore(":memory:")
    with pytest.raises(SourceError, match="not a readable zip"):
        update(store, str(archive))
    assert store.advisory_count() == 0  # nothing of it written


def test_an_unreadable_source_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    for source in [tmp_path / "missing", tmp_path / "notes.txt"]:
        with pytest.raises(SourceError):
            update(CveStore(":memory:"), str(source))
