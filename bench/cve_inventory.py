"""The CVE inventory of an image holding this machine's full dpkg database (issue 16).

Builds, in memory, an image whose layer holds all of ``/var/lib/dpkg`` (``status`` and the
thousands of ``info/*`` files the reader must stream past) and the os-release, compressed as a
registry stores it (gzip by default), then times ``inventory()`` over it: wall and CPU seconds
(``time.process_time``), median of ``--runs``; ``--status-only`` leaves ``info/*`` out.
Target (issue 16): inventory and match under 1 s; this measures the inventory part.
``--sbom`` also times the CycloneDX document; ``--kept`` also times the inventory from the
layer's kept reading (what an image built on this one pays for this layer: decoding and
stacking, no read), and reports the kept reading's size. Go's archive/tar (Docker, BuildKit)
writes USTAR headers when a file fits them, so the layer is GNU tar by default; ``--pax``
gives every file a PAX header, which costs Python's tarfile about half again as much.

    python bench/cve_inventory.py --runs 7
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import statistics
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ocireg.ext.cve.inventory import inventory
from ocireg.ext.cve.inventory.sbom import cyclonedx_json
from ocireg.ext.cve.packages import Inventory

DPKG = Path("/var/lib/dpkg")


def image_layer(
    compression: str, status_only: bool = False, pax: bool = False
) -> tuple[bytes, int, int]:
    """(blob, tar size, member count) of a layer holding /var/lib/dpkg and the os-release."""
    buffer = io.BytesIO()
    count = 0
    dpkg = [DPKG / "status"] if status_only else sorted(DPKG.rglob("*"))
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT if pax else tarfile.GNU_FORMAT
    ) as tar:
        for path in [Path("/usr/lib/os-release"), *dpkg]:
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=str(path).lstrip("/"), recursive=False)
                count += 1
        info = tarfile.TarInfo("etc/os-release")
        info.type, info.linkname = tarfile.SYMTYPE, "../usr/lib/os-release"
        tar.addfile(info)
    data = buffer.getvalue()
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6), len(data), count
    if compression == "zstd":
        return (
            subprocess.run(
                ["zstd", "-q", "-c"], input=data, check=True, capture_output=True
            ).stdout,
            len(data),
            count,
        )
    return data, len(data), count


class Kept:
    """Layer readings kept in memory (the registry keeps them in the meta DB)."""

    def __init__(self) -> None:
        self.readings: dict[str, bytes] = {}
        self.puts = 0

    def get(self, digest: str) -> bytes | None:
        return self.readings.get(digest)

    def put(self, digest: str, reading: bytes) -> None:
        self.puts += 1
        self.readings[digest] = reading


def timed(work: Callable[[], object], runs: int) -> tuple[list[float], list[float], object]:
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--compression", choices=["gzip", "zstd", "none"], default="gzip")
    parser.add_argument("--sbom", action="store_true", help="also time the CycloneDX document")
    parser.add_argument("--kept", action="store_true", help="also time it from a kept reading")
    parser.add_argument(
        "--status-only", action="store_true", help="only var/lib/dpkg/status, not info/*"
    )
    parser.add_argument(
        "--pax", action="store_true", help="a PAX header for every file (GNU tar format else)"
    )
    args = parser.parse_args()

    blob, tar_size, members = image_layer(args.compression, args.status_only, args.pax)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()

    def opener() -> BinaryIO:
        return io.BytesIO(blob)

    walls, cpus, result = timed(lambda: inventory([(digest, opener)]), args.runs)
    assert isinstance(result, Inventory)
    print(
        f"layer: {members} files, {tar_size / 1e6:.1f} MB tar, {len(blob) / 1e6:.1f} MB "
        f"{args.compression}; {len(result.packages)} packages, os {result.os}"
    )
    print("| measure | median s | min s | max s | median CPU s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(
        f"| inventory | {statistics.median(walls):.3f} | {min(walls):.3f} | "
        f"{max(walls):.3f} | {statistics.median(cpus):.3f} |"
    )
    if args.kept:
        kept = Kept()
        inventory([(digest, opener)], kept)
        walls, cpus, again = timed(lambda: inventory([(digest, opener)], kept), args.runs)
        assert again == result and kept.puts == 1
        print(
            f"| from the kept reading ({len(kept.readings[digest]) / 1e3:.0f} kB) | "
            f"{statistics.median(walls):.3f} | {min(walls):.3f} | {max(walls):.3f} | "
            f"{statistics.median(cpus):.3f} |"
        )
    if args.sbom:
        walls, cpus, _ = timed(lambda: cyclonedx_json(result), max(1, args.runs // 3))
        print(
            f"| CycloneDX JSON | {statistics.median(walls):.3f} | {min(walls):.3f} | "
            f"{max(walls):.3f} | {statistics.median(cpus):.3f} |"
        )


if __name__ == "__main__":
    main()
