"""``storage.retention`` (and each sub-path's): zot's retention policies, which decide what GC
removes beyond unreferenced content. Imported only when a configuration has the section (see
:mod:`ocireg.sections`); :mod:`ocireg.registry.retention` applies it.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ocireg.defaults import empty_list
from ocireg.durations import Duration
from ocireg.repopattern import RepositoryPattern


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeepRules(_Section):
    """What keeps an image, any rule sufficing (zot OR-s them); no rule keeps everything."""

    mostRecentlyPushedCount: int = Field(0, ge=0)
    mostRecentlyPulledCount: int = Field(0, ge=0)
    pushedWithin: Duration | None = None
    pulledWithin: Duration | None = None

    def has_rules(self) -> bool:
        return bool(
            self.mostRecentlyPushedCount
            or self.mostRecentlyPulledCount
            or self.pushedWithin is not None
            or self.pulledWithin is not None
        )


class KeepTags(KeepRules):
    patterns: list[str] = Field(
        default_factory=empty_list, description="Regular expressions; empty matches every tag."
    )

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return patterns


class RetentionPolicy(_Section):
    repositories: list[RepositoryPattern] = Field(
        min_length=1, description="Repository globs, doublestar's rules (as accessControl's)."
    )
    deleteReferrers: bool = Field(False, description="Remove referrers of absent subjects.")
    deleteUntagged: bool = Field(True, description="Remove untagged manifests.")
    keepTags: list[KeepTags] = Field(default_factory=empty_list)
    keepUntagged: KeepRules | None = None


class RetentionConfig(_Section):
    dryRun: bool = Field(False, description="Log each decision, change nothing.")
    delay: Duration | None = Field(None, description="Age before untagged content goes (gcDelay).")
    policies: list[RetentionPolicy] = Field(default_factory=empty_list)
