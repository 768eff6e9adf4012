"""Layer readings kept by digest: an image built on one already read reads only its own layers,
and the kept readings stack into the same inventory as reading every layer (whiteouts, files
over directories and hard links to lower layers included: ``test_overlay`` runs each of its
cases both ways)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from ocireg.ext.cve.inventory import inventory
from ocireg.ext.cve.inventory.cache import READERS, decode
from ocireg.ext.cve.packages import Inventory

from .images import File, Layer, Link, layer, os_release_files, whiteout

STATUS = Path("/var/lib/dpkg/status")
SITE = "usr/lib/python3/dist-packages"


class Kept:
    """A layer cache in memory, counting what was kept and what was asked for."""

    def __init__(self) -> None:
        self.readings: dict[str, bytes] = {}
        self.puts: list[str] = []

    def get(self, digest: str) -> bytes | None:
        return self.readings.get(digest)

    def put(self, digest: str, reading: bytes) -> None:
        self.puts.append(digest)
        self.readings[digest] = reading


class Opened:
    """Openers that note which layers were read."""

    def __init__(self) -> None:
        self.digests: list[str] = []

    def __call__(self, layers: Sequence[Layer]) -> list[Layer]:
        return [(digest, self._noting(digest, opener)) for digest, opener in layers]

    def _noting(self, digest: str, opener: Callable[[], BinaryIO]) -> Callable[[], BinaryIO]:
        def opened() -> BinaryIO:
            self.digests.append(digest)
            return opener()

        return opened


def through_cache(kept: Kept) -> Callable[[Sequence[Layer]], Inventory]:
    """``inventory`` through ``kept``: its answer must equal reading every layer's, and
    asked again it must read no layer at all."""

    def cached(layers: Sequence[Layer]) -> Inventory:
        found = inventory(layers, kept)
        assert found == inventory(layers)
        opened = Opened()
        assert inventory(opened(layers), kept) == found
        assert opened.digests == []
        return found

    return cached


def _metadata(name: str, version: str) -> File:
    text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    return File(f"{SITE}/{name}-{version}.dist-info/METADATA", text.encode())


def _names(found: Inventory) -> dict[str, str]:
    return {p.name: p.layer for p in found.packages}


def test_a_derived_image_reads_only_its_own_layers() -> None:
    base = [
        layer([*os_release_files(), _metadata("requests", "2.30.0")]),
        layer([_metadata("urllib3", "2.0.7")]),
    ]
    top = layer([whiteout(f"{SITE}/urllib3-2.0.7.dist-info"), _metadata("idna", "3.6")])
    kept, opened = Kept(), Opened()
    first = inventory(opened(base), kept)
    assert opened.digests == [digest for digest, _ in base]
    assert set(_names(first)) == {"requests", "urllib3"}

    opened.digests.clear()
    derived = inventory(opened([*base, top]), kept)
    assert opened.digests == [top[0]]  # the base's layers come from what was kept
    # the top layer's whiteout applies to the kept base layer below it
    assert _names(derived) == {"requests": base[0][0], "idna": top[0]}
    assert derived == inventory([*base, top])
    assert derived.os == first.os is not None


def test_a_hard_link_to_a_kept_lower_layer_file() -> None:
    base = layer([_metadata("idna", "3.6")])
    linked = f"{SITE}/copy.dist-info/METADATA"
    top = layer([Link(linked, f"{SITE}/idna-3.6.dist-info/METADATA", hard=True)])
    kept = Kept()
    inventory([base], kept)
    found = through_cache(kept)([base, top])
    assert sorted(p.path for p in found.packages) == [
        linked,
        f"{SITE}/idna-3.6.dist-info/METADATA",
    ]


def test_a_reading_kept_by_other_readers_or_damaged_is_read_again() -> None:
    image = [layer([File("var/lib/dpkg/status", STATUS.read_bytes()[:4000])])]
    digest = image[0][0]
    kept = Kept()
    found = inventory(image, kept)
    assert decode(kept.readings[digest], digest) is not None
    for stale in (
        kept.readings[digest].replace(b"reading %d" % READERS, b"reading %d" % (READERS - 1)),
        kept.readings[digest][:-10],
    ):
        kept.readings[digest] = stale
        opened = Opened()
        assert inventory(opened(image), kept) == found
        assert opened.digests == [digest]
        assert decode(kept.readings[digest], digest) is not None  # kept again, good this time
