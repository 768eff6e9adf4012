"""Package URLs written directly, in the form packageurl-python writes and reads."""

from __future__ import annotations

from pathlib import Path

from packageurl import PackageURL

from ocireg.ext.cve.inventory import inventory

from .images import File, layer, os_release_files, tree
from .test_apk import INSTALLED
from .test_java import LOG4J
from .test_python import SITE, dist_info


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
