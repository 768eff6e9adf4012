"""What an image's inventory is: the packages found in its layers, and its OS release.

The inventory readers (``ocireg.ext.cve.inventory``) produce it from an image's layers; the
matcher compares it with OSV records. OSV names ecosystems as osv.dev does (``Debian``,
``Alpine``, ``Red Hat``/``Rocky Linux``..., ``PyPI``, ``npm``, ``Go``, ``Maven``); a package
of an OS distribution gets the release-qualified ecosystem (``Debian:12``, ``Alpine:v3.20``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OsRelease:
    """From ``etc/os-release`` (or ``usr/lib/os-release``)."""

    id: str  # "debian", "alpine", "rocky", ...
    version_id: str = ""  # "12", "3.20.3", ...
    version_codename: str = ""
    pretty_name: str = ""


@dataclass(frozen=True)
class Package:
    ecosystem: str  # OSV ecosystem, release-qualified for OS packages ("Debian:12")
    name: str  # binary package / distribution name as the ecosystem spells it
    version: str  # as installed, in the ecosystem's own version syntax
    purl: str  # package URL (https://github.com/package-url/purl-spec)
    layer: str  # digest of the layer that installed (last changed) it
    path: str = ""  # where in the image it was found
    source_name: str = ""  # OS source package (Debian/Alpine origin), which advisories name
    source_version: str = ""


@dataclass(frozen=True)
class Inventory:
    os: OsRelease | None
    packages: tuple[Package, ...] = field(default_factory=tuple)
