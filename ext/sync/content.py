"""Content rules: which upstream repositories and tags are mirrored, and under which local name.

As zot's ``content`` entries: ``prefix`` is a doublestar glob over upstream names (leading and
trailing ``/`` ignored, as in zot's examples ``/repo/**``); ``destination`` puts the repository
under another local path, ``stripPrefix`` drops the prefix's literal part first. With no rules,
every repository keeps its name (on-demand mirrors of a whole upstream).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from ocireg.repopattern import matches

from .settings import ContentRule, TagRules

# semver.org's pattern, with zot's (Masterminds) allowance for a leading "v"
SEMVER = re.compile(
    r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
# tags that are not images but signatures, SBOMs or the referrers tag schema's indexes: copied
# with the image they are about, never as images of their own
ATTACHED_TAG = re.compile(r"sha256-[0-9a-f]{64}(\.(sig|sbom|att))?")


def _glob(rule: ContentRule) -> str:
    return rule.prefix.strip("/") or "**"


def _literal_prefix(rule: ContentRule) -> str:
    """The part of the prefix before its first glob character (what stripPrefix drops)."""
    text = rule.prefix.strip("/")
    cut = re.search(r"[*?\[{\\]", text)
    return (text[: cut.start()] if cut else text).rstrip("/")


@dataclass(frozen=True)
class Content:
    rules: list[ContentRule]

    def rule_for(self, upstream: str) -> ContentRule | None:
        for rule in self.rules:
            if matches(_glob(rule), upstream):
                return rule
        return None

    def wanted(self, upstream: str) -> bool:
        return not self.rules or self.rule_for(upstream) is not None

    def local_name(self, upstream: str) -> str:
        rule = self.rule_for(upstream)
        if rule is None or not rule.destination:
            return upstream
        destination = rule.destination.strip("/")
        name = upstream
        if rule.stripPrefix:
            literal = _literal_prefix(rule)
            if literal and (name == literal or name.startswith(literal + "/")):
                name = name[len(literal) :].strip("/")
        return posixpath.join(destination, name).strip("/") if name else destination

    def upstream_name(self, local: str) -> str | None:
        """The upstream repository a local name mirrors (on-demand), None when no rule maps
        to it."""
        if not self.rules:
            return local
        for rule in self.rules:
            candidate = self._reverse(rule, local)
            if candidate is not None and self.rule_for(candidate) is rule:
                return candidate
        return None

    @staticmethod
    def _reverse(rule: ContentRule, local: str) -> str | None:
        if not rule.destination:
            return local
        destination = rule.destination.strip("/")
        if destination and local != destination and not local.startswith(destination + "/"):
            return None
        rest = local[len(destination) :].strip("/")
        if not rule.stripPrefix:
            return rest or None
        literal = _literal_prefix(rule)
        return posixpath.join(literal, rest).strip("/") if (literal or rest) else None

    def tags(self, upstream: str, tags: list[str]) -> list[str]:
        """The tags of ``upstream`` the rules keep, attached (signature) tags left out."""
        rule = self.rule_for(upstream)
        kept = [tag for tag in tags if not ATTACHED_TAG.fullmatch(tag)]
        if rule is None or rule.tags is None:
            return kept
        return [tag for tag in kept if tag_wanted(rule.tags, tag)]


def tag_wanted(rules: TagRules, tag: str) -> bool:
    if rules.regex is not None and re.search(rules.regex, tag) is None:
        return False
    if rules.excludeRegex is not None and re.search(rules.excludeRegex, tag) is not None:
        return False
    return not rules.semver or SEMVER.fullmatch(tag) is not None
