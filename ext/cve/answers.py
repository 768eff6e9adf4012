"""CVE results in zot's GraphQL shapes (``CVE``, ``PackageInfo``, ``ImageVulnerabilitySummary``).

zot's rules: packages are merged per CVE ID; an empty fixed version or package path reads
"Not Specified"; ``searchedCVE``/``excludedCVE`` are case-insensitive substrings of the ID,
title, severity, reference, description or a package's name, version or path; ``severity`` is
an exact match. ``MaxSeverity`` is "" for an image never scanned and "NONE" for one scanned
clean.

An image may have thousands of CVEs and a page shows ten: its CVEs are first listed with their
severities alone (from the findings' index, :meth:`CveStore.severities`), filtered by severity,
sorted and counted; only the page shown (or, for a text filter, every CVE it looks at) has its
packages and words read (:func:`complete`) and becomes GraphQL objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..search import types as t
from .severity import LEVELS, RANK
from .store import CveRow, CveStore

NOT_SPECIFIED = "Not Specified"


@dataclass
class Merged:
    """One CVE of an image, with every package it was found in. Its packages and words (title,
    description, reference: the advisory's) are read by :func:`complete` when needed."""

    id: str
    advisory: str  # the advisory whose words it shows
    severity: str
    digests: tuple[str, ...] = ()  # the image manifests whose findings it comes from
    packages: list[tuple[str, str, str, str]] = field(default_factory=list)  # name, path,
    # installed, fixed
    title: str = ""
    description: str = ""
    reference: str = ""

    def text(self) -> str:
        """What searchedCVE and excludedCVE look in, lowercased."""
        parts = [self.id, self.title, self.severity, self.reference, self.description]
        for name, path, installed, _fixed in self.packages:
            parts += [name, installed, path]
        return "\n".join(parts).lower()

    def graphql(self) -> t.CVE:
        return t.CVE(
            Id=self.id,
            Title=self.title,
            Description=self.description,
            Reference=self.reference,
            Severity=self.severity,
            PackageList=[
                t.PackageInfo(
                    Name=name,
                    PackagePath=path or NOT_SPECIFIED,
                    InstalledVersion=installed,
                    FixedVersion=fixed or NOT_SPECIFIED,
                )
                for name, path, installed, fixed in self.packages
            ],
        )


def merge(rows: Iterable[CveRow]) -> list[Merged]:
    """One CVE per ID, its packages under it (the highest severity of its advisories)."""
    merged: dict[str, Merged] = {}
    seen: set[tuple[str, str, str, str]] = set()
    for row in rows:
        cve = merged.get(row.cve)
        if cve is None:
            cve = merged[row.cve] = Merged(row.cve, row.advisory, row.severity)
        elif RANK.get(row.severity, 0) > RANK.get(cve.severity, 0):
            cve.severity, cve.advisory = row.severity, row.advisory
        key = (row.cve, row.package, row.path, row.installed)
        if key not in seen:
            seen.add(key)
            cve.packages.append((row.package, row.path, row.installed, row.fixed))
    return list(merged.values())


def _read_packages(store: CveStore, found: list[Merged]) -> None:
    """Each CVE's packages, and the advisory it shows, merged as :func:`merge` merges an
    image's findings (the rows of the CVEs asked for, in the image's order)."""
    by_image: dict[tuple[str, ...], list[Merged]] = {}
    for cve in found:
        if cve.packages:
            continue  # read already (by the text filter, before the page)
        by_image.setdefault(cve.digests, []).append(cve)
    for digests, cves in by_image.items():
        wanted = [cve.id for cve in cves]
        rows = (row for digest in digests for row in store.findings(digest, wanted))
        merged = {cve.id: cve for cve in merge(rows)}
        for cve in cves:
            read = merged.get(cve.id)
            if read is not None:  # else rescanned since it was listed: shown without packages
                cve.advisory, cve.severity = read.advisory, read.severity
                cve.packages = read.packages


def complete(store: CveStore, found: list[Merged]) -> list[Merged]:
    """Read the packages and words of ``found`` (the page shown, or every CVE a text filter
    looks at)."""
    _read_packages(store, found)
    words = store.words(cve.advisory for cve in found)
    for cve in found:
        cve.title, cve.description, cve.reference = words.get(cve.advisory, ("", "", ""))
    return found


def keep(
    store: CveStore,
    found: list[Merged],
    searched: str | None,
    excluded: str | None,
    severity: str | None,
) -> list[Merged]:
    if searched or excluded:
        complete(store, found)
    kept = []
    for cve in found:
        if severity and cve.severity != severity:
            continue
        if searched or excluded:
            text = cve.text()
            if searched and searched.lower() not in text:
                continue
            if excluded and excluded.lower() in text:
                continue
        kept.append(cve)
    return kept


def summary(severities: Iterable[str] | None) -> t.ImageVulnerabilitySummary:
    """Counts per severity of an image's CVEs; ``severities`` None: never scanned."""
    counts = dict.fromkeys(LEVELS, 0)
    for level in severities or []:
        counts[level if level in counts else "UNKNOWN"] += 1
    present = [level for level in LEVELS if counts[level]]
    most = "" if severities is None else (present[-1] if present else "NONE")
    return t.ImageVulnerabilitySummary(
        MaxSeverity=most,
        Count=sum(counts.values()),
        UnknownCount=counts["UNKNOWN"],
        LowCount=counts["LOW"],
        MediumCount=counts["MEDIUM"],
        HighCount=counts["HIGH"],
        CriticalCount=counts["CRITICAL"],
    )


def _scanned(store: CveStore, digests: list[str]) -> list[str] | None:
    states = store.scan_states(digests)
    good = [digest for digest in digests if states.get(digest) == ""]
    return good or None


def scanned(store: CveStore, digests: list[str]) -> bool:
    """Whether any of a set of image manifests was scanned (without an error)."""
    return _scanned(store, digests) is not None


def of_images(store: CveStore, digests: list[str]) -> list[Merged] | None:
    """The CVEs of a set of image manifests (an index's images together), with their
    severities (packages and words: :func:`complete`); None when none of them was scanned."""
    good = _scanned(store, digests)
    if good is None:
        return None
    image = tuple(good)
    return [Merged(cve, "", level, image) for cve, level in store.severities(good).items()]


def vulnerabilities(store: CveStore, digests: list[str]) -> t.ImageVulnerabilitySummary:
    """An image's ``Vulnerabilities``, counted from the stored severities alone."""
    good = _scanned(store, digests)
    return summary(None if good is None else store.severities(good).values())
