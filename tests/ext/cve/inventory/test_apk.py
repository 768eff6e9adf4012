"""apk: a real Alpine 3.18 installed database (``data/README.md`` says where it came from)."""

from __future__ import annotations

from pathlib import Path

from ocireg.ext.cve.inventory import inventory

from .images import File, layer

DATA = Path(__file__).parent / "data"
INSTALLED = File("lib/apk/db/installed", source=DATA / "alpine-3.18-aarch64-installed")
OS_RELEASE = File("etc/os-release", source=DATA / "alpine-3.18-os-release")


def test_every_record_with_its_origin_release_and_purl() -> None:
    found = inventory([layer([OS_RELEASE, INSTALLED])])
    assert found.os is not None and (found.os.id, found.os.version_id) == ("alpine", "3.18.3")
    assert [(p.name, p.version, p.source_name) for p in found.packages] == [
        ("alpine-baselayout", "3.4.3-r1", "alpine-baselayout"),
        ("alpine-baselayout-data", "3.4.3-r1", "alpine-baselayout"),
        ("libssl3", "3.1.2-r0", "openssl"),
        ("musl", "1.2.4-r1", "musl"),
        ("musl-utils", "1.2.4-r1", "musl"),
        ("scanelf", "1.3.7-r1", "pax-utils"),
        ("ssl_client", "1.36.1-r2", "busybox"),
        ("zlib", "1.2.13-r1", "zlib"),
    ]
    assert {p.ecosystem for p in found.packages} == {"Alpine:v3.18"}
    libssl = found.packages[2]
    assert libssl.source_version == "3.1.2-r0"
    assert libssl.purl == (
        "pkg:apk/alpine/libssl3@3.1.2-r0?arch=aarch64&distro=alpine-3.18.3&upstream=openssl"
    )


def test_the_file_lists_do_not_leak_into_the_package_fields() -> None:
    """Each record lists its files (``F:``/``R:``/``a:``/``Z:``) after the package fields;
    a truncated last record without a version is no package."""
    text = (DATA / "alpine-3.18-aarch64-installed").read_bytes()
    cut = text + b"P:half-written\nA:aarch64\n"
    found = inventory([layer([File("lib/apk/db/installed", cut)])])
    assert len(found.packages) == 8
    assert {p.ecosystem for p in found.packages} == {"Alpine"}
