"""OSV ecosystems: one per distribution's os-release."""

from __future__ import annotations

import pytest

from ocireg.ext.cve.inventory import inventory

from .images import File, layer
from .test_apk import INSTALLED, OS_RELEASE

STATUS = b"Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n"


@pytest.mark.parametrize(
    ("os_release", "expected"),
    [
        ('ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n', "Debian:12"),
        ('ID=ubuntu\nVERSION_ID="22.04"\nID_LIKE=debian\n', "Ubuntu:22.04:LTS"),
        ('ID=ubuntu\nVERSION_ID="23.10"\n', "Ubuntu:23.10"),
        ("ID=alpine\nVERSION_ID=3.20.3\n", "Alpine:v3.20"),
        ('ID="rocky"\nVERSION_ID="9.4"\n', "Rocky Linux:9"),
        ('ID="almalinux"\nVERSION_ID="9.4"\n', "AlmaLinux:9"),
        ('ID="opensuse-leap"\nVERSION_ID="15.5"\n', "openSUSE:Leap 15.5"),
        ('ID="sles"\nVERSION_ID="15.5"\n', "SUSE:Linux Enterprise Server 15 SP5"),
        ("ID=wolfi\nVERSION_ID=20230201\n", "Wolfi"),
        # no OSV data under a name os-release can give: kept as os-release says it
        ('ID="rhel"\nVERSION_ID="9.4"\n', "rhel:9.4"),
        ("ID=fedora\nVERSION_ID=40\n", "fedora:40"),
        ("ID=debian\n", "Debian"),  # testing and sid have no VERSION_ID
        ("NAME=nothing\n", "Debian"),  # no ID: no release known
    ],
)
def test_the_release_qualified_ecosystem(os_release: str, expected: str) -> None:
    files = [File("etc/os-release", os_release.encode()), File("var/lib/dpkg/status", STATUS)]
    assert [p.ecosystem for p in inventory([layer(files)]).packages] == [expected]


def test_the_alpine_release_file_is_read_from_the_image() -> None:
    found = inventory([layer([OS_RELEASE, INSTALLED])])
    assert found.os is not None and found.os.pretty_name == "Alpine Linux v3.18"
