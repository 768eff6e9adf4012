"""What a reader finds in one file, before the OS release is known.

A reader turns one file (a dpkg status, a ``METADATA``, a jar...) into ``Record`` values. The
ecosystem and purl of a package depend on the image's OS release, which may be found in any
layer, so they are given at the end (``ecosystems.package``), not by the readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["deb", "apk", "rpm", "pypi", "npm", "golang", "maven"]


@dataclass(frozen=True)
class Record:
    kind: Kind
    name: str  # as the ecosystem names it: "libc6", "openssl-libs", "PyYAML", "@babel/core"...
    version: str  # as installed; for rpm "version-release", the epoch apart
    source_name: str = ""  # dpkg Source / apk origin / the source rpm's name
    source_version: str = ""
    arch: str = ""
    epoch: str = ""  # rpm only; "" when the header has none
    # the version as the package's own tooling writes it, when it differs (Go: "v1.2.3")
    raw_version: str = ""


@dataclass(frozen=True)
class Placed:
    """A record and the digest of the layer that last installed (or changed) it."""

    record: Record
    layer: str
