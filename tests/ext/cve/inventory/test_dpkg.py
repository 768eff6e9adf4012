"""dpkg: this machine's own database, read from an image layer, against dpkg-query's answer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ocireg.ext.cve.inventory import inventory
from ocireg.ext.cve.inventory.dpkg import paragraphs

from .images import File, layer, os_release_files

STATUS = Path("/var/lib/dpkg/status")
QUERY = "${db:Status-Status}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n"


def dpkg_query() -> set[tuple[str, str, str, str]]:
    """What dpkg itself says is installed: (package, version, source, source version)."""
    command = shutil.which("dpkg-query")
    if command is None or not STATUS.exists():
        pytest.skip("not a dpkg system: no dpkg-query or /var/lib/dpkg/status")
    out = subprocess.run([command, "-W", "-f", QUERY], capture_output=True, text=True, check=True)
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    return {(r[1], r[2], r[3], r[4]) for r in rows if r[0] == "installed"}


def test_every_installed_package_with_its_source_as_dpkg_query_says() -> None:
    expected = dpkg_query()
    found = inventory([layer([File("var/lib/dpkg/status", source=STATUS), *os_release_files()])])
    got = {(p.name, p.version, p.source_name, p.source_version) for p in found.packages}
    assert got == expected
    assert {p.ecosystem for p in found.packages} == {"Debian:12"}
    assert {p.path for p in found.packages} == {"var/lib/dpkg/status"}


def test_distroless_status_d_one_file_a_package() -> None:
    """Distroless images write one status file per package, next to its md5sums."""
    expected = dpkg_query()
    text = STATUS.read_text()
    files = []
    for fields, chunk in zip(paragraphs(text), text.split("\n\n"), strict=False):
        name = fields["package"]
        files.append(File(f"var/lib/dpkg/status.d/{name}", chunk.encode() + b"\n"))
        files.append(File(f"var/lib/dpkg/status.d/{name}.md5sums", b"0" * 32 + b"  usr/x\n"))
    found = inventory([layer(files)])
    got = {(p.name, p.version, p.source_name, p.source_version) for p in found.packages}
    assert got == expected


def test_packages_not_installed_are_left_out() -> None:
    status = (
        b"Package: removed-one\nStatus: deinstall ok config-files\nVersion: 1.0-1\n\n"
        b"Package: half\nStatus: install ok half-installed\nVersion: 2.0-1\n\n"
        b"Package: kept\nStatus: install ok installed\nVersion: 3.0-1\nSource: kept-src\n"
    )
    found = inventory([layer([File("var/lib/dpkg/status", status)])])
    assert [(p.name, p.source_name, p.source_version) for p in found.packages] == [
        ("kept", "kept-src", "3.0-1")
    ]
    assert found.packages[0].ecosystem == "Debian"  # no os-release: not release-qualified
