"""rpm: a sqlite rpmdb written from real Rocky Linux 9.4 package records, read without rpm."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ocireg.ext.cve.inventory import inventory
from ocireg.ext.cve.inventory.rpmdb import header_tags

from .images import File, layer
from .rpmdb import Rpm, header_blob, write_rpmdb

ROCKY_OS_RELEASE = b"""NAME="Rocky Linux"
VERSION="9.4 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"
"""

# Packages of Rocky Linux 9.4 (and RHEL 9.4), as `rpm -qa` reports them there.
RECORDS = [
    Rpm("bash", "5.1.8", "9.el9", "x86_64", "bash-5.1.8-9.el9.src.rpm"),
    Rpm("openssl-libs", "3.0.7", "27.el9", "x86_64", "openssl-3.0.7-27.el9.src.rpm", epoch=1),
    Rpm("curl", "7.76.1", "29.el9", "x86_64", "curl-7.76.1-29.el9.src.rpm"),
    Rpm("audit-libs", "3.1.2", "2.el9", "x86_64", "audit-3.1.2-2.el9.src.rpm"),
    Rpm("gpg-pubkey", "3228467c", "613798eb", "(none)", ""),  # an imported key, no package
]


@pytest.fixture
def rpmdb(tmp_path: Path) -> bytes:
    return write_rpmdb(tmp_path / "rpmdb.sqlite", RECORDS, extra_blobs=(b"\x00\x00\x00\xff",))


def test_every_package_with_epoch_source_and_purl(rpmdb: bytes) -> None:
    found = inventory(
        [layer([File("etc/os-release", ROCKY_OS_RELEASE), File("var/lib/rpm/rpmdb.sqlite", rpmdb)])]
    )
    assert [(p.name, p.version, p.source_name, p.source_version) for p in found.packages] == [
        ("bash", "5.1.8-9.el9", "bash", "5.1.8-9.el9"),
        ("openssl-libs", "1:3.0.7-27.el9", "openssl", "3.0.7-27.el9"),
        ("curl", "7.76.1-29.el9", "curl", "7.76.1-29.el9"),
        ("audit-libs", "3.1.2-2.el9", "audit", "3.1.2-2.el9"),
    ]
    assert {p.ecosystem for p in found.packages} == {"Rocky Linux:9"}
    assert found.packages[1].purl == (
        "pkg:rpm/rocky/openssl-libs@3.0.7-27.el9"
        "?arch=x86_64&distro=rocky-9.4&epoch=1&upstream=openssl"
    )


def test_the_newer_sysimage_location(rpmdb: bytes) -> None:
    found = inventory([layer([File("usr/lib/sysimage/rpm/rpmdb.sqlite", rpmdb)])])
    assert len(found.packages) == 4
    assert {p.ecosystem for p in found.packages} == {"RPM"}


def test_a_file_that_is_no_sqlite_database_gives_no_packages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    found = inventory([layer([File("var/lib/rpm/rpmdb.sqlite", b"SQLite format 2\0" * 64)])])
    assert found.packages == ()
    assert "rpmdb not readable" in caplog.text


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[:20],  # cut inside the index
        lambda blob: b"\x7f\xff\xff\xff" + blob[4:],  # an absurd entry count
        lambda blob: blob[:8] + b"\x00\x00\x03\xe8\x00\x00\x00\x06\x00\x00\x7f\xff" + blob[20:],
    ],
    ids=["cut", "count", "offset-out-of-range"],
)
def test_a_damaged_header_is_refused_not_misread(damage: Callable[[bytes], bytes]) -> None:
    blob = header_blob(RECORDS[0])
    assert header_tags(blob)[1000] == "bash"
    damaged = damage(blob)
    try:
        tags = header_tags(damaged)
    except ValueError:
        return
    assert tags.get(1000) in (None, "bash")  # never garbage as a name
