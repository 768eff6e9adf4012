"""An advisory's severity, one of zot's words: from its CVSS vectors, else the source's rating.

CVSS 3.x is preferred (what zot's trivy shows), then 4.0, then 2.0; a record without a vector
falls back to the rating its source gives (GitHub's ``database_specific.severity``, Ubuntu's
priority), and to ``UNKNOWN``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

LEVELS = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
RANK = {level: number for number, level in enumerate(LEVELS)}
_PREFERRED = ("CVSS_V3", "CVSS_V4", "CVSS_V2")
# the words sources use for their own rating
_WORDS = {
    "critical": "CRITICAL",
    "high": "HIGH",
    "important": "HIGH",
    "moderate": "MEDIUM",
    "medium": "MEDIUM",
    "low": "LOW",
    "negligible": "LOW",
    "unimportant": "LOW",
}


def _from_score(score: float) -> str:
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    return "LOW" if score > 0 else "UNKNOWN"


@lru_cache(maxsize=65_536)  # scoring is slow and exports repeat vectors
def from_vector(kind: str, vector: str) -> str | None:
    """The severity a CVSS vector scores, or None when it does not parse."""
    try:
        if kind == "CVSS_V3":
            return _from_score(float(CVSS3(vector).base_score))
        if kind == "CVSS_V4":
            return _from_score(float(CVSS4(vector).base_score))
        if kind == "CVSS_V2":
            return _from_score(float(CVSS2(vector).base_score))
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


def _entries(record: dict[str, Any]) -> list[dict[str, Any]]:
    found = [e for e in record.get("severity") or [] if isinstance(e, dict)]
    for affected in record.get("affected") or []:
        if isinstance(affected, dict):
            found += [e for e in affected.get("severity") or [] if isinstance(e, dict)]
    return found


def _rating(record: dict[str, Any]) -> str | None:
    places = [record.get("database_specific")]
    places += [
        a.get("database_specific") for a in record.get("affected") or [] if isinstance(a, dict)
    ]
    places += [
        a.get("ecosystem_specific") for a in record.get("affected") or [] if isinstance(a, dict)
    ]
    for place in places:
        if isinstance(place, dict):
            word = place.get("severity") or place.get("urgency")
            if isinstance(word, str) and word.lower() in _WORDS:
                return _WORDS[word.lower()]
    for entry in _entries(record):  # a non-CVSS rating (Ubuntu: "medium")
        score = entry.get("score")
        if isinstance(score, str) and score.lower() in _WORDS:
            return _WORDS[score.lower()]
    return None


def severity(record: dict[str, Any]) -> str:
    """The severity of an OSV record."""
    entries = _entries(record)
    for kind in _PREFERRED:
        for entry in entries:
            score = entry.get("score")
            if entry.get("type") == kind and isinstance(score, str):
                found = from_vector(kind, score)
                if found is not None:
                    return found
    return _rating(record) or "UNKNOWN"
