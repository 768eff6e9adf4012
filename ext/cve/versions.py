"""OSV's affected ranges, evaluated with each ecosystem's own version comparison (``univers``).

An ecosystem is compared by its base name: ``Debian:12`` compares as Debian. A version or a
range event that does not parse in its ecosystem's syntax matches nothing, rather than
everything: a wrong "affected" is as misleading as a wrong "fixed".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from univers import versions as uv

_KINDS: dict[str, type[uv.Version]] = {
    "Debian": uv.DebianVersion,
    "Ubuntu": uv.DebianVersion,
    "Alpine": uv.AlpineLinuxVersion,
    "Wolfi": uv.AlpineLinuxVersion,
    "Chainguard": uv.AlpineLinuxVersion,
    "Red Hat": uv.RpmVersion,
    "Rocky Linux": uv.RpmVersion,
    "AlmaLinux": uv.RpmVersion,
    "openSUSE": uv.RpmVersion,
    "SUSE": uv.RpmVersion,
    "Mageia": uv.RpmVersion,
    "PyPI": uv.PypiVersion,
    "npm": uv.SemverVersion,
    "crates.io": uv.SemverVersion,
    "Go": uv.GolangVersion,
    "Maven": uv.MavenVersion,
    "RubyGems": uv.RubygemsVersion,
    "NuGet": uv.NugetVersion,
    "Packagist": uv.ComposerVersion,
}
# ecosystems whose advisories name the source package, not the binary one (as OSV matches)
BY_SOURCE = frozenset({"Debian", "Ubuntu", "Alpine", "Wolfi", "Chainguard"})
_PYPI_SEPARATORS = re.compile(r"[-_.]+")


def base(ecosystem: str) -> str:
    """``Debian:12`` → ``Debian``."""
    return ecosystem.split(":", 1)[0]


def package_key(ecosystem: str, name: str) -> str:
    """A package name as compared: PyPI names are normalised (PEP 503); others are exact."""
    if base(ecosystem) == "PyPI":
        return _PYPI_SEPARATORS.sub("-", name).lower()
    return name


def supported(ecosystem: str) -> bool:
    return base(ecosystem) in _KINDS


@lru_cache(maxsize=200_000)
def parse(ecosystem: str, text: str) -> uv.Version | None:
    """``text`` as a version of ``ecosystem`` (a base name), or None when it does not parse."""
    kind = _KINDS.get(ecosystem)
    if kind is None or not text:
        return None
    if kind is uv.GolangVersion and not text.startswith("v"):
        text = "v" + text  # OSV writes Go versions without the "v" build info has
    try:
        return kind(text)
    except (ValueError, TypeError, uv.InvalidVersion, AttributeError):
        return None


@dataclass(frozen=True)
class Verdict:
    affected: bool
    fixed: str = ""  # the first fixed version above the installed one, when a range says


_ORDER = {"introduced": 0, "fixed": 1, "last_affected": 2, "limit": 3}


def _events(ecosystem: str, events: Iterable[Any]) -> list[tuple[uv.Version | None, str, str]]:
    """(version, kind, text), sorted as OSV evaluates them; "introduced: 0" sorts first."""
    found: list[tuple[uv.Version | None, str, str]] = []
    for event in events:
        if not isinstance(event, dict) or len(event) != 1:
            continue
        ((kind, text),) = event.items()
        if kind not in _ORDER or not isinstance(text, str):
            continue
        if kind == "introduced" and text == "0":
            found.append((None, kind, text))
            continue
        version = parse(ecosystem, text)
        if version is None:
            raise ValueError(f"{text!r} is not a {ecosystem} version")
        found.append((version, kind, text))
    none_first = [e for e in found if e[0] is None]
    ordered = sorted((e for e in found if e[0] is not None), key=lambda e: (e[0], _ORDER[e[1]]))
    return none_first + ordered


def in_range(ecosystem: str, installed: uv.Version, events: Iterable[Any]) -> Verdict:
    """OSV's evaluation of one ECOSYSTEM or SEMVER range (the specification's pseudo-code)."""
    try:
        ordered = _events(ecosystem, events)
    except ValueError:
        return Verdict(False)
    affected = False
    for version, kind, _text in ordered:
        if version is None:  # "introduced: 0"
            affected = True
        elif kind == "introduced":
            affected = affected or not installed < version
        elif kind == "last_affected":
            affected = affected and not installed > version
        else:  # fixed, limit
            affected = affected and installed < version
    if not affected:
        return Verdict(False)
    fixes = [
        text for v, kind, text in ordered if kind == "fixed" and v is not None and installed < v
    ]
    return Verdict(True, fixes[0] if fixes else "")


@lru_cache(maxsize=262_144)
def affects_encoded(ecosystem: str, version: str, ranges: str, listed: str) -> Verdict:
    """:func:`affects` with ranges and versions as stored (JSON): the same package version
    meets the same advisory in every image that holds it, and again at each update."""
    return affects(ecosystem, version, json.loads(ranges), json.loads(listed))


def affects(ecosystem: str, version: str, ranges: list[Any], listed: list[Any]) -> Verdict:
    """Whether an affected entry (its ``ranges`` and ``versions``) covers ``version``."""
    kind = base(ecosystem)
    installed = parse(kind, version)
    if installed is None:
        return Verdict(False)
    for range_ in ranges:
        if not isinstance(range_, dict) or range_.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue  # GIT ranges name commits: the versions list carries what they cover
        verdict = in_range(kind, installed, range_.get("events") or [])
        if verdict.affected:
            return verdict
    if version in listed or any(parse(kind, str(other)) == installed for other in listed):
        return Verdict(True)
    return Verdict(False)
