"""Layer blobs as they come: plain, gzip or zstd tar, sniffed; read once, as a stream."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import BinaryIO

import pytest

from ocireg.ext.cve.inventory import InventoryError, inventory

from .images import Compression, File, Layer, compress, layer, os_release_files, tar_bytes

STATUS = Path("/var/lib/dpkg/status")
FILES = [File("var/lib/dpkg/status", source=STATUS), *os_release_files()]


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_every_compression_gives_the_same_inventory(compression: Compression) -> None:
    expected = inventory([layer(FILES, "none")])
    found = inventory([layer(FILES, compression)])
    assert len(found.packages) > 100
    assert [(p.name, p.version) for p in found.packages] == [
        (p.name, p.version) for p in expected.packages
    ]


def test_a_zstd_layer_of_several_frames() -> None:
    """zstd:chunked layers compress each file as its own frame; the frames are one stream."""
    tar = tar_bytes(FILES)
    middle = len(tar) // 2
    blob = compress(tar[:middle], "zstd") + compress(tar[middle:], "zstd")
    found = inventory([("sha256:frames", lambda: io.BytesIO(blob))])
    assert len(found.packages) == len(inventory([layer(FILES, "none")]).packages)


class OneWayStream(io.RawIOBase):
    """A blob that can only be read forward, once, as a registry's storage stream is."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0) -> int:
        raise io.UnsupportedOperation("a stream")

    def tell(self) -> int:
        raise io.UnsupportedOperation("a stream")


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_each_layer_is_opened_once_and_read_forward_only(compression: Compression) -> None:
    blob = compress(tar_bytes(FILES), compression)
    opened: list[int] = []

    def opener() -> BinaryIO:
        opened.append(1)
        return OneWayStream(blob)  # type: ignore[return-value]

    found = inventory([("sha256:one", opener)])
    assert opened == [1]
    assert found.os is not None and len(found.packages) > 100


def broken(blob: bytes) -> Layer:
    return "sha256:broken", lambda: io.BytesIO(blob)


@pytest.mark.parametrize(
    "blob",
    [
        b"this is no tar at all, nor gzip, nor zstd" * 20,
        gzip.compress(tar_bytes(FILES))[:5000],  # a gzip stream cut short
        tar_bytes(FILES)[:700],  # a tar cut inside a header
        b"zstd",  # a zstd stream cut short after its tar's end: made in the test
    ],
    ids=["garbage", "truncated-gzip", "truncated-tar", "truncated-zstd"],
)
def test_an_unreadable_layer_fails_the_inventory_naming_the_layer(blob: bytes) -> None:
    good = layer(FILES)
    if blob == b"zstd":
        # a tar, then a megabyte of zero padding, compressed; cut where only padding is lost
        whole = compress(tar_bytes(FILES) + bytes(1 << 20), "zstd")
        blob = whole[: len(whole) - 8]
    with pytest.raises(InventoryError, match="sha256:broken"):
        inventory([good, broken(blob)])


def test_a_file_over_its_readers_cap_is_skipped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ocireg.ext.cve.inventory import scan

    monkeypatch.setattr(scan, "DPKG", scan.Reader("dpkg", 1024, scan.DPKG.parse))
    found = inventory([layer(FILES)])
    assert found.packages == ()
    assert "var/lib/dpkg/status" in caplog.text and "over the 1024" in caplog.text
