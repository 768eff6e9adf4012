"""Inventories for the CVE tests, built directly as the inventory readers would return them."""

from __future__ import annotations

from ocireg.ext.cve.packages import Inventory, OsRelease, Package

LAYER = "sha256:" + "1" * 64
DIST = "usr/lib/python3/dist-packages"


def deb(release: str, name: str, version: str, source: str = "") -> Package:
    return Package(
        ecosystem=f"Debian:{release}",
        name=name,
        version=version,
        purl=f"pkg:deb/debian/{name}@{version}?distro=debian-{release}",
        layer=LAYER,
        path="var/lib/dpkg/status",
        source_name=source or name,
        source_version=version,
    )


def apk(release: str, name: str, version: str, origin: str) -> Package:
    return Package(
        ecosystem=f"Alpine:{release}",
        name=name,
        version=version,
        purl=f"pkg:apk/alpine/{name}@{version}",
        layer=LAYER,
        path="lib/apk/db/installed",
        source_name=origin,
        source_version=version,
    )


def lib(ecosystem: str, name: str, version: str, path: str) -> Package:
    kind = {"PyPI": "pypi", "npm": "npm", "Go": "golang", "Maven": "maven"}[ecosystem]
    return Package(ecosystem, name, version, f"pkg:{kind}/{name}@{version}", LAYER, path)


BULLSEYE = Inventory(
    OsRelease("debian", "11", "bullseye"),
    (
        deb("11", "libssl1.1", "1.1.1n-0+deb11u3", "openssl"),  # DSA-5343-1: by its source
        deb("11", "nginx", "1.18.0-6.1+deb11u3"),  # DSA-3029-1 is for Debian:7 only
        lib("PyPI", "Requests", "2.30.0", f"{DIST}/requests-2.30.0.dist-info"),
        lib("npm", "elliptic", "6.5.3", "app/node_modules/elliptic/package.json"),
        lib("Go", "golang.org/x/text", "v0.3.2", "usr/local/bin/tool"),
        lib("Maven", "org.apache.logging.log4j:log4j-core", "2.14.1", "app/log4j-core.jar"),
    ),
)
BULLSEYE_FIXED = Inventory(
    OsRelease("debian", "11", "bullseye"),
    (
        deb("11", "libssl1.1", "1.1.1n-0+deb11u4", "openssl"),
        lib("PyPI", "requests", "2.31.0", f"{DIST}/requests-2.31.0.dist-info"),
        lib("npm", "elliptic", "6.5.4", "app/node_modules/elliptic/package.json"),
        lib("Go", "golang.org/x/text", "v0.3.3", "usr/local/bin/tool"),
        lib("Maven", "org.apache.logging.log4j:log4j-core", "2.12.2", "app/log4j-core.jar"),
    ),
)
BOOKWORM = Inventory(
    OsRelease("debian", "12", "bookworm"),
    (deb("12", "libssl3", "3.0.11-1~deb12u2", "openssl"),),  # another release: no DSA-5343-1
)
ALPINE_317 = Inventory(
    OsRelease("alpine", "3.17.1"),
    (apk("v3.17", "libcrypto3", "3.0.7-r2", "openssl"),),
)
ALPINE_318 = Inventory(
    OsRelease("alpine", "3.18.0"),
    (apk("v3.18", "libcrypto3", "3.0.7-r2", "openssl"),),  # Alpine:v3.17's advisory only
)
