"""An inventory against the imported advisories: which packages each advisory affects.

A package is looked up by ecosystem and name: OS packages (Debian, Alpine) by their source
package, as OSV's own matcher does, in their release's ecosystem (``Debian:12``) or the
distribution's (``Debian``); others by their name (PyPI's normalised). Each candidate's ranges
are then evaluated with the ecosystem's own comparison (:mod:`.versions`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from .osv import match_name
from .packages import Package
from .store import CveStore, Finding, StoredPackage
from .versions import affects_encoded, base, supported


def stored(packages: Iterable[Package]) -> list[StoredPackage]:
    """The inventory as kept for later matching; the version compared is the source
    package's where the lookup is by source (a binary's own version may differ by binNMU)."""
    kept = []
    for p in packages:
        key = match_name(p.ecosystem, p.name, p.source_name)
        by_source = key == p.source_name and p.source_name != ""
        version = p.source_version if by_source and p.source_version else p.version
        kept.append(StoredPackage(p.ecosystem, key, p.name, version, p.path or p.purl))
    return kept


def match(store: CveStore, packages: Iterable[StoredPackage]) -> list[Finding]:
    """Every (CVE name, package) an advisory in ``store`` says is affected."""
    found: dict[tuple[str, str, str], Finding] = {}
    for package in packages:
        if not supported(package.ecosystem):
            continue
        ecosystems = tuple(dict.fromkeys((package.ecosystem, base(package.ecosystem))))
        for candidate in store.candidates(ecosystems, package.key):
            verdict = affects_encoded(
                candidate.ecosystem, package.version, candidate.ranges, candidate.versions
            )
            if not verdict.affected:
                continue
            for name in json.loads(candidate.names):
                finding = Finding(
                    name,
                    candidate.advisory,
                    package.name,
                    package.version,
                    verdict.fixed,
                    package.path,
                )
                key = (name, package.name, package.path)
                # two advisories of one CVE and package: keep the one that names a fix
                if key not in found or (finding.fixed and not found[key].fixed):
                    found[key] = finding
    return list(found.values())
