"""CVE results in zot's GraphQL shapes (``CVE``, ``PackageInfo``, ``ImageVulnerabilitySummary``).

zot's rules: packages are merged per CVE ID; an empty fixed version or package path reads
"Not Specified"; ``searchedCVE``/``excludedCVE`` are case-insensitive substrings of the ID,
title, severity, reference, description or a package's name, version or path; ``severity`` is
an exact match; the default order is by severity, highest first. ``MaxSeverity`` is "" for an
image never scanned and "NONE" for one scanned clean.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..search import types as t
from .severity import LEVELS, RANK
from .store import CveRow, CveStore

NOT_SPECIFIED = "Not Specified"


def cves(rows: Iterable[CveRow]) -> list[t.CVE]:
    """One CVE per ID, its packages under it (the highest severity of its advisories)."""
    merged: dict[str, t.CVE] = {}
    seen: set[tuple[str, str, str, str]] = set()
    for row in rows:
        cve = merged.get(row.cve)
        if cve is None:
            cve = merged[row.cve] = t.CVE(
                Id=row.cve,
                Title=row.title,
                Description=row.description,
                Reference=row.reference,
                Severity=row.severity,
                PackageList=[],
            )
        elif RANK.get(row.severity, 0) > RANK.get(cve.Severity or "", 0):
            cve.Severity = row.severity
        package = (row.cve, row.package, row.path, row.installed)
        if package in seen:
            continue
        seen.add(package)
        assert cve.PackageList is not None
        cve.PackageList.append(
            t.PackageInfo(
                Name=row.package,
                PackagePath=row.path or NOT_SPECIFIED,
                InstalledVersion=row.installed,
                FixedVersion=row.fixed or NOT_SPECIFIED,
            )
        )
    return list(merged.values())


def _text(cve: t.CVE) -> str:
    parts = [cve.Id, cve.Title, cve.Severity, cve.Reference, cve.Description]
    for package in cve.PackageList or []:
        if package is not None:
            parts += [package.Name, package.InstalledVersion, package.PackagePath]
    return "\n".join(p or "" for p in parts).lower()


def keep(
    found: list[t.CVE], searched: str | None, excluded: str | None, severity: str | None
) -> list[t.CVE]:
    kept = []
    for cve in found:
        text = _text(cve)
        if searched and searched.lower() not in text:
            continue
        if excluded and excluded.lower() in text:
            continue
        if severity and cve.Severity != severity:
            continue
        kept.append(cve)
    return kept


def summary(found: list[t.CVE] | None) -> t.ImageVulnerabilitySummary:
    """Counts per severity; ``found`` None: never scanned."""
    counts = dict.fromkeys(LEVELS, 0)
    for cve in found or []:
        counts[cve.Severity if cve.Severity in counts else "UNKNOWN"] += 1
    present = [level for level in LEVELS if counts[level]]
    most = "" if found is None else (present[-1] if present else "NONE")
    return t.ImageVulnerabilitySummary(
        MaxSeverity=most,
        Count=sum(counts.values()),
        UnknownCount=counts["UNKNOWN"],
        LowCount=counts["LOW"],
        MediumCount=counts["MEDIUM"],
        HighCount=counts["HIGH"],
        CriticalCount=counts["CRITICAL"],
    )


def of_images(store: CveStore, digests: list[str]) -> list[t.CVE] | None:
    """The CVEs of a set of image manifests (an index's images together); None when none of
    them was scanned."""
    states = store.scan_states(digests)
    if not any(error == "" for error in states.values()):
        return None
    rows = [row for digest in digests if states.get(digest) == "" for row in store.findings(digest)]
    return cves(rows)
