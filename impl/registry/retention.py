"""Retention policies (``storage.retention``), applied by GC, as zot reads them.

The first policy whose ``repositories`` glob matches a repository applies to it (the rules of
:mod:`ocireg.repopattern`, as for ``http.accessControl``). Each tag goes to the first
``keepTags`` entry whose ``patterns`` (regular
expressions, searched) match it, and that entry keeps it if any of its rules does: among the
``mostRecentlyPushedCount`` most recently pushed or ``mostRecentlyPulledCount`` most recently
pulled of the entry's tags, or pushed or pulled within a duration; an entry without rules keeps
every tag it matches. A tag that matches no entry is deleted; a tag the meta DB has no
statistics for is kept. ``deleteUntagged`` and ``deleteReferrers`` say what GC may do with
untagged manifests and referrers of absent subjects; ``keepUntagged`` rules keep some untagged.
Every decision is logged; with ``dryRun`` nothing changes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocireg.meta.db import MetaDB
from ocireg.repopattern import matches

if TYPE_CHECKING:  # imported only when a configuration has retention (ocireg.sections)
    from ocireg.retentionconfig import KeepRules, KeepTags, RetentionConfig, RetentionPolicy


@dataclass(frozen=True)
class Decision:
    tag: str
    digest: str
    keep: bool
    reason: str


def policy_for(config: RetentionConfig | None, repo: str) -> RetentionPolicy | None:
    for policy in config.policies if config else []:
        if any(matches(pattern, repo) for pattern in policy.repositories):
            return policy
    return None


def _kept_by(rules: KeepRules, candidates: dict[str, dict[str, Any]], now: float) -> dict[str, str]:
    """Which of ``candidates`` (name -> meta DB row) the rules keep, with the reason."""
    if not rules.has_rules():
        return dict.fromkeys(candidates, "matched, no rules")
    kept: dict[str, str] = {}

    def newest(field: str, count: int, label: str) -> None:
        ordered = sorted(candidates, key=lambda n: candidates[n].get(field) or 0, reverse=True)
        for name in [n for n in ordered if candidates[n].get(field)][:count]:
            kept.setdefault(name, f"{label} {count}")

    newest("pushed_at", rules.mostRecentlyPushedCount, "among the most recently pushed")
    newest("last_pull", rules.mostRecentlyPulledCount, "among the most recently pulled")
    for name, row in candidates.items():
        if (
            rules.pushedWithin is not None
            and now - (row.get("pushed_at") or 0) <= rules.pushedWithin
        ):
            kept.setdefault(name, "pushed within the window")
        if (
            rules.pulledWithin is not None
            and now - (row.get("last_pull") or 0) <= rules.pulledWithin
        ):
            kept.setdefault(name, "pulled within the window")
    return kept


def _entry_for(tag: str, entries: list[KeepTags]) -> int | None:
    for number, entry in enumerate(entries):
        if not entry.patterns or any(re.search(p, tag) for p in entry.patterns):
            return number
    return None


def tag_decisions(
    policy: RetentionPolicy,
    meta: MetaDB,
    repo: str,
    tags: dict[str, str],
    clock: Callable[[], float] = time.time,
) -> list[Decision]:
    """Keep or delete, for each tag of ``repo`` (tag -> digest)."""
    now, decisions = clock(), []
    groups: dict[int, dict[str, dict[str, Any]]] = {}
    for tag, digest in sorted(tags.items()):
        row = meta.image(repo, digest)
        entry = _entry_for(tag, policy.keepTags)
        if row is None:
            decisions.append(Decision(tag, digest, True, "no statistics in the meta DB"))
        elif entry is None:
            decisions.append(Decision(tag, digest, False, "matches no keepTags entry"))
        else:
            groups.setdefault(entry, {})[tag] = row
    for entry, candidates in groups.items():
        kept = _kept_by(policy.keepTags[entry], candidates, now)
        for tag, row in candidates.items():
            reason = kept.get(tag, f"kept by no rule of keepTags entry {entry}")
            decisions.append(Decision(tag, row["digest"], tag in kept, reason))
    return sorted(decisions, key=lambda d: d.tag)


def untagged_kept(
    policy: RetentionPolicy, meta: MetaDB, repo: str, digests: list[str], now: float
) -> set[str]:
    """The untagged manifests a policy keeps from GC."""
    if not policy.deleteUntagged:
        return set(digests)
    if policy.keepUntagged is None:
        return set()
    rows = {d: row for d in digests if (row := meta.image(repo, d)) is not None}
    return set(_kept_by(policy.keepUntagged, rows, now)) | (set(digests) - set(rows))
