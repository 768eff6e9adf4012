"""Content rules: which upstream repositories and tags are mirrored, under which local name,
and back (on demand maps a local name to its upstream)."""

from __future__ import annotations

from typing import Any

import pytest

from ocireg.ext.sync.content import Content, tag_wanted
from ocireg.ext.sync.settings import ContentRule, TagRules


def content(*rules: dict[str, Any]) -> Content:
    return Content([ContentRule.model_validate(rule) for rule in rules])


@pytest.mark.parametrize(
    ("rule", "upstream", "local"),
    [
        ({"prefix": "/team-a/**"}, "team-a/app", "team-a/app"),
        ({"prefix": "/team-a/**", "destination": "/mirror"}, "team-a/app", "mirror/team-a/app"),
        ({"prefix": "/team-a/**", "destination": "/m", "stripPrefix": True}, "team-a/x/y", "m/x/y"),
        ({"prefix": "/base", "destination": "/m", "stripPrefix": True}, "base", "m"),
        ({"prefix": "/base/*", "destination": "/m", "stripPrefix": True}, "base/os", "m/os"),
    ],
)
def test_local_names_and_back(rule: dict[str, Any], upstream: str, local: str) -> None:
    rules = content(rule)
    assert rules.wanted(upstream)
    assert rules.local_name(upstream) == local
    assert rules.upstream_name(local) == upstream


def test_the_first_matching_rule_applies_and_others_are_not_wanted() -> None:
    rules = content({"prefix": "/a/*", "destination": "/x"}, {"prefix": "/a/**"})
    assert rules.local_name("a/b") == "x/a/b"
    assert rules.local_name("a/b/c") == "a/b/c"
    assert not rules.wanted("other/b")
    assert rules.upstream_name("elsewhere/b") is None


def test_no_rules_mirror_everything_under_its_own_name() -> None:
    assert content().wanted("any/thing") and content().upstream_name("any/thing") == "any/thing"


def test_tag_rules() -> None:
    rules = TagRules(regex="^v", excludeRegex="-rc$", semver=True)
    assert tag_wanted(rules, "v1.2.3")
    assert not tag_wanted(rules, "v1.2.3-rc")
    assert not tag_wanted(rules, "v1.2")  # not a semantic version
    assert not tag_wanted(rules, "1.2.3")  # regex
    assert tag_wanted(TagRules(semver=True), "1.0.0-alpha.1+build.5")


def test_signature_and_referrer_tags_are_never_images() -> None:
    digest = "sha256-" + "a" * 64
    tags = ["v1", digest, f"{digest}.sig", f"{digest}.sbom", "latest"]
    assert content().tags("r", tags) == ["v1", "latest"]
