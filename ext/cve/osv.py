"""OSV records (https://ossf.github.io/osv-schema/) as the matcher keeps them.

An advisory is reported under its CVE names, as zot's trivy reports CVEs: the CVE IDs among its
id, ``aliases`` and ``upstream`` (a Debian DSA names the CVEs it fixes), or its own id when it
has none. Two advisories of the same CVE (a GHSA and a PYSEC) are then one CVE in the answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from .severity import severity
from .versions import BY_SOURCE, base, package_key

OSV_URL = "https://osv.dev/vulnerability/"


class NotOsv(ValueError):
    """A document that is not an OSV record."""


@dataclass(frozen=True)
class Affected:
    ecosystem: str  # as the record says ("Debian:12", "PyPI")
    key: str  # the package name as compared (PyPI normalised)
    name: str  # as the record says
    ranges: list[Any]
    versions: list[str]


@dataclass(frozen=True)
class Advisory:
    id: str
    modified: str  # RFC 3339, compared as text after normalising (see _timestamp)
    withdrawn: bool
    names: tuple[str, ...]  # the CVE IDs it is reported under
    title: str
    description: str
    severity: str
    reference: str
    affected: tuple[Affected, ...]


# what osv.dev writes (UTC, "Z", up to microseconds) is respelled without building a datetime,
# which an import of 100,000 records otherwise does 100,000 times
_PLAIN_UTC = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z")


@lru_cache(maxsize=4096)  # records share their days
def _real_date(day: str) -> bool:
    try:
        datetime.fromisoformat(day)
    except ValueError:
        return False
    return True


def _timestamp(value: Any) -> str:
    """RFC 3339 in one spelling (UTC, microseconds) so that text comparison orders them."""
    plain = _PLAIN_UTC.fullmatch(value) if isinstance(value, str) else None
    if plain is not None:
        day, hour, minute, second, fraction = plain.groups()
        if _real_date(day) and hour < "24" and minute < "60" and second < "60":
            return f"{day}T{hour}:{minute}:{second}.{(fraction or '').ljust(6, '0')}Z"
    try:
        when = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise NotOsv(f"modified {value!r} is not an RFC 3339 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _strings(value: Any) -> list[str]:
    return (
        [item for item in value or [] if isinstance(item, str)] if isinstance(value, list) else []
    )


def names(record: dict[str, Any]) -> tuple[str, ...]:
    own = str(record["id"])
    candidates = [own, *_strings(record.get("aliases")), *_strings(record.get("upstream"))]
    cves = sorted({c.upper() for c in candidates if c.upper().startswith("CVE-")})
    return tuple(cves) if cves else (own,)


def reference(record: dict[str, Any], cve_names: tuple[str, ...]) -> str:
    """zot's choice: cve.org for a CVE, else the advisory's own page, else its first link."""
    if len(cve_names) == 1 and cve_names[0].startswith("CVE-"):
        return f"https://www.cve.org/CVERecord?id={cve_names[0]}"
    links = [r for r in record.get("references") or [] if isinstance(r, dict) and r.get("url")]
    for link in links:
        if link.get("type") == "ADVISORY":
            return str(link["url"])
    return str(links[0]["url"]) if links else OSV_URL + str(record["id"])


def _affected(record: dict[str, Any]) -> tuple[Affected, ...]:
    found = []
    for entry in record.get("affected") or []:
        package = entry.get("package") if isinstance(entry, dict) else None
        if not isinstance(package, dict):
            continue
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str) or not name:
            continue
        ranges = [r for r in entry.get("ranges") or [] if isinstance(r, dict)]
        key = package_key(ecosystem, name)
        found.append(Affected(ecosystem, key, name, ranges, _strings(entry.get("versions"))))
    return tuple(found)


def identity(record: Any) -> tuple[str, str]:
    """(id, modified) of a record, without reading the rest: what import compares first."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise NotOsv("an OSV record is a JSON object with an id")
    if not record.get("modified"):
        raise NotOsv(f"{record['id']}: an OSV record has a modified time")
    return record["id"], _timestamp(record["modified"])


def parse(record: Any, known: tuple[str, str] | None = None) -> Advisory:
    """An OSV record as an Advisory; NotOsv when it lacks an id or ``modified``. ``known``:
    its :func:`identity`, when the caller has it already."""
    own, modified = known or identity(record)
    cve_names = names(record)
    title = str(record.get("summary") or "")
    description = str(record.get("details") or "")
    return Advisory(
        id=own,
        modified=modified,
        withdrawn=bool(record.get("withdrawn")),
        names=cve_names,
        title=title or description.split("\n", 1)[0][:200],
        description=description or title,
        severity=severity(record),
        reference=reference(record, cve_names),
        affected=_affected(record),
    )


def match_name(ecosystem: str, name: str, source_name: str) -> str:
    """The name an installed package is looked up by: its source package where advisories
    name sources (Debian, Alpine), else its own name."""
    if base(ecosystem) in BY_SOURCE and source_name:
        return source_name
    return package_key(ecosystem, name)
