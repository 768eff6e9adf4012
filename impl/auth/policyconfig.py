"""``http.accessControl``'s settings as zot spells them: policies per repository pattern, the
admin policy, groups and who may read metrics. :mod:`ocireg.auth.policy` decides with them; this
module is imported only when a configuration has the section (see :mod:`ocireg.sections`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ocireg.defaults import empty_list
from ocireg.repopattern import RepositoryPattern

Action = Literal["read", "create", "update", "delete"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _supported(actions: Any) -> Any:
    # zot's fifth action turns deletes of a digest several tags share into 409s; ignoring it
    # would allow deletes the operator meant to stop, so it is refused by name.
    if isinstance(actions, list) and "detectManifestCollision" in actions:
        raise ValueError("the detectManifestCollision action is not supported by ocireg")
    return actions


Actions = Annotated[list[Action], BeforeValidator(_supported)]


class Policy(_Section):
    users: list[str] = Field(default_factory=empty_list)
    groups: list[str] = Field(default_factory=empty_list)
    actions: Actions = Field(default_factory=empty_list)
    conditions: list[dict[str, str]] | None = None

    @field_validator("conditions")
    @classmethod
    def _no_conditions(cls, value: list[dict[str, str]] | None) -> None:
        # Ignoring a condition would grant more than the operator wrote: refuse the file.
        if value:
            raise ValueError("CEL conditions are not supported by ocireg; remove them")
        return None


class RepositoryPolicy(_Section):
    policies: list[Policy] = Field(default_factory=empty_list)
    defaultPolicy: Actions = Field(default_factory=empty_list)
    anonymousPolicy: Actions = Field(default_factory=empty_list)


class GroupMembers(_Section):
    users: list[str] = Field(default_factory=empty_list)


class MetricsPolicy(_Section):
    users: list[str] = Field(default_factory=empty_list)
    anonymousPolicy: list[Literal["read"]] = Field(default_factory=empty_list)


class AccessControlConfig(_Section):
    repositories: dict[RepositoryPattern, RepositoryPolicy] = Field(default_factory=dict)
    adminPolicy: Policy | None = None
    groups: dict[str, GroupMembers] = Field(default_factory=dict)
    metrics: MetricsPolicy | None = None

    def names_anyone(self) -> bool:
        """Whether any rule names users or groups (zot refuses those without authentication)."""
        rules = [p for r in self.repositories.values() for p in r.policies]
        rules += [self.adminPolicy] if self.adminPolicy else []
        named = any(rule.users or rule.groups for rule in rules)
        defaults = any(r.defaultPolicy for r in self.repositories.values())
        return named or defaults or bool(self.metrics and self.metrics.users)
