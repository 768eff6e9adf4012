"""A record's OSV ecosystem and package URL, given the image's OS release.

OS packages get the release-qualified ecosystem osv.dev uses (``Debian:12``, ``Alpine:v3.20``,
``Ubuntu:22.04:LTS``, ``Rocky Linux:9``...). A distribution osv.dev has no data for keeps its
os-release name (``fedora:40``), so nothing matches it by accident. Without an os-release the
ecosystem is the package format's usual one, unqualified. Red Hat's own OSV ecosystems name a
product repository (``Red Hat:enterprise_linux:9::baseos``), which os-release cannot tell, so
RHEL keeps its os-release name too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..packages import OsRelease, Package
from .purls import purl as write_purl
from .records import Placed, Record


def _major(version_id: str) -> str:
    return version_id.split(".")[0]


def _alpine(version_id: str) -> str:
    numbers = re.match(r"(\d+)\.(\d+)", version_id)
    return f"Alpine:v{numbers[1]}.{numbers[2]}" if numbers else "Alpine"


def _ubuntu(version_id: str) -> str:
    # an LTS release is an even year's April release: 20.04, 22.04, 24.04
    year, _, month = version_id.partition(".")
    lts = month == "04" and year.isdigit() and int(year) % 2 == 0
    return f"Ubuntu:{version_id}:LTS" if lts else f"Ubuntu:{version_id}"


def _suse(version_id: str) -> str:
    major, _, service_pack = version_id.partition(".")
    return f"SUSE:Linux Enterprise Server {major}" + (
        f" SP{service_pack}" if service_pack not in ("", "0") else ""
    )


def _qualified(name: str, version: Callable[[str], str] = lambda v: v) -> Callable[[str], str]:
    return lambda version_id: f"{name}:{version(version_id)}" if version_id else name


OS_ECOSYSTEMS: dict[str, Callable[[str], str]] = {
    "debian": _qualified("Debian", _major),
    "ubuntu": _ubuntu,
    "alpine": _alpine,
    "rocky": _qualified("Rocky Linux", _major),
    "almalinux": _qualified("AlmaLinux", _major),
    "opensuse-leap": _qualified("openSUSE", lambda v: f"Leap {v}"),
    "sles": _suse,
    "mariner": _qualified("Mariner"),
    "azurelinux": _qualified("Azure Linux"),
    "photon": _qualified("Photon OS"),
    "wolfi": lambda _: "Wolfi",
    "chainguard": lambda _: "Chainguard",
}

UNQUALIFIED = {"deb": "Debian", "apk": "Alpine", "rpm": "RPM"}
LANGUAGE = {"pypi": "PyPI", "npm": "npm", "golang": "Go", "maven": "Maven"}
PURL_NAMESPACE_DEFAULT = {"deb": "debian", "apk": "alpine", "rpm": "rpm"}
PURL_NAMESPACE = {"rhel": "redhat", "opensuse-leap": "opensuse", "sles": "suse"}


def ecosystem(kind: str, os: OsRelease | None) -> str:
    if kind in LANGUAGE:
        return LANGUAGE[kind]
    if os is None:
        return UNQUALIFIED[kind]
    known = OS_ECOSYSTEMS.get(os.id)
    if known is not None:
        return known(os.version_id)
    return f"{os.id}:{os.version_id}" if os.version_id else os.id


def _os_purl(record: Record, os: OsRelease | None) -> str:
    namespace = PURL_NAMESPACE_DEFAULT[record.kind]
    qualifiers: dict[str, str] = {}
    if os is not None:
        namespace = PURL_NAMESPACE.get(os.id, os.id)
        if os.version_id:
            qualifiers["distro"] = f"{os.id}-{os.version_id}"
    if record.arch:
        qualifiers["arch"] = record.arch
    if record.epoch:
        qualifiers["epoch"] = record.epoch
    if record.source_name and record.source_name != record.name:
        qualifiers["upstream"] = record.source_name
    return write_purl(record.kind, namespace, record.name, record.version, qualifiers)


def _language_purl(record: Record) -> str:
    version = record.raw_version or record.version
    if record.kind == "maven":
        group, _, artifact = record.name.partition(":")
        return write_purl("maven", group, artifact, version)
    if record.kind == "npm" and record.name.startswith("@") and "/" in record.name:
        scope, _, name = record.name.partition("/")
        return write_purl("npm", scope, name, version)
    if record.kind == "golang" and "/" in record.name:
        namespace, _, name = record.name.rpartition("/")
        return write_purl("golang", namespace, name, version)
    if record.kind == "pypi":
        return write_purl("pypi", None, record.name, version)
    return write_purl(record.kind, None, record.name, version)


def purl(record: Record, os: OsRelease | None) -> str:
    if record.kind in UNQUALIFIED:
        return _os_purl(record, os)
    return _language_purl(record)


def ecosystem_version(record: Record) -> str:
    """The version as OSV writes it: rpm's with its epoch (``1:3.0.7-27.el9``)."""
    return f"{record.epoch}:{record.version}" if record.epoch else record.version


def package(placed: Placed, path: str, os: OsRelease | None) -> Package:
    record = placed.record
    return Package(
        ecosystem=ecosystem(record.kind, os),
        name=record.name,
        version=ecosystem_version(record),
        purl=purl(record, os),
        layer=placed.layer,
        path=path,
        source_name=record.source_name,
        source_version=record.source_version,
    )
