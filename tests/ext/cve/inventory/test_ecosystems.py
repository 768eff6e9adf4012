"""OSV ecosystems and package URLs: one per distribution's os-release, and purls in the form
packageurl-python writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from packageurl import PackageURL

from ocireg.ext.cve.inventory import inventory

from .images import File, layer, os_release_files, tree
from .test_apk import INSTALLED, OS_RELEASE
from .test_java import LOG4J
from .test_python import SITE, dist_info

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


def test_every_purl_is_in_canonical_form() -> None:
    """packageurl-python parses and writes back each purl unchanged, and reads the parts."""
    files = [
        File("var/lib/dpkg/status", source=Path("/var/lib/dpkg/status")),
        *os_release_files(),
        INSTALLED,
        *tree(dist_info("PyYAML"), f"{SITE}/{dist_info('PyYAML').name}"),
        File("opt/log4j.jar", LOG4J),
        File("node_modules/@babel/core/package.json", b'{"name":"@babel/core","version":"7.24.0"}'),
    ]
    found = inventory([layer(files)]).packages
    assert {p.ecosystem for p in found} >= {"Debian:12", "PyPI", "Maven", "npm"}
    for package in found:
        parsed = PackageURL.from_string(package.purl)
        assert parsed.to_string() == package.purl
        assert parsed.version is not None and package.version.endswith(parsed.version)


def test_the_alpine_release_file_is_read_from_the_image() -> None:
    found = inventory([layer([OS_RELEASE, INSTALLED])])
    assert found.os is not None and found.os.pretty_name == "Alpine Linux v3.18"
