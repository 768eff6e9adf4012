"""``http.accessControl`` as zot reads it, and the one question it answers: may this identity
do this action on this repository?

zot's rules (``pkg/api/authz.go``), kept exactly:

* the repository pattern that matches and is longest (most specific) is the only one consulted;
* in it, a policy naming the user, or one of the user's groups, with the action allows it; else
  ``defaultPolicy`` allows an authenticated user, ``anonymousPolicy`` an anonymous one;
* failing that, ``adminPolicy`` allows its users and groups its actions on every repository.

Patterns are globs over ``/``-separated names: ``*`` and ``?`` stay within one segment, ``**``
crosses segments, ``[...]`` is a character class and ``{a,b}`` an alternative.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ocireg.auth.identity import Identity

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
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    actions: Actions = Field(default_factory=list)
    conditions: list[dict[str, str]] | None = None

    @field_validator("conditions")
    @classmethod
    def _no_conditions(cls, value: list[dict[str, str]] | None) -> None:
        # Ignoring a condition would grant more than the operator wrote: refuse the file.
        if value:
            raise ValueError("CEL conditions are not supported by ocireg; remove them")
        return None


class RepositoryPolicy(_Section):
    policies: list[Policy] = Field(default_factory=list)
    defaultPolicy: Actions = Field(default_factory=list)
    anonymousPolicy: Actions = Field(default_factory=list)


class GroupMembers(_Section):
    users: list[str] = Field(default_factory=list)


class MetricsPolicy(_Section):
    users: list[str] = Field(default_factory=list)
    anonymousPolicy: list[Literal["read"]] = Field(default_factory=list)


class AccessControlConfig(_Section):
    repositories: dict[str, RepositoryPolicy] = Field(default_factory=dict)
    adminPolicy: Policy | None = None
    groups: dict[str, GroupMembers] = Field(default_factory=dict)
    metrics: MetricsPolicy | None = None

    @field_validator("repositories")
    @classmethod
    def _patterns_compile(cls, value: dict[str, RepositoryPolicy]) -> dict[str, RepositoryPolicy]:
        for pattern in value:
            glob_regex(pattern)
        return value

    def names_anyone(self) -> bool:
        """Whether any rule names users or groups (zot refuses those without authentication)."""
        rules = [p for r in self.repositories.values() for p in r.policies]
        rules += [self.adminPolicy] if self.adminPolicy else []
        named = any(rule.users or rule.groups for rule in rules)
        defaults = any(r.defaultPolicy for r in self.repositories.values())
        return named or defaults or bool(self.metrics and self.metrics.users)


@lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression a repository glob stands for (doublestar's rules, as zot
    matches); ValueError when it is malformed."""
    return re.compile(_glob_body(pattern) + r"\Z")


def _glob_body(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i = _double_star(pattern, i, out)
            continue
        if char == "\\":
            if i + 1 == len(pattern):
                raise ValueError(f"pattern {pattern!r}: ends with an escape")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "[":
            i = _char_class(pattern, i, out)
            continue
        if char == "{":
            end = pattern.find("}", i)
            if end < 0:
                raise ValueError(f"pattern {pattern!r}: unclosed '{{'")
            choices = pattern[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_glob_body(c) for c in choices) + ")")
            i = end + 1
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char) or re.escape(char))
        i += 1
    return "".join(out)


def _double_star(pattern: str, i: int, out: list[str]) -> int:
    """``**`` as a whole segment matches any number of segments, none included (``a/**``
    matches ``a``, ``a/**/b`` matches ``a/b``); inside a segment it is any text."""
    after = i + 2
    whole_start = i == 0 or pattern[i - 1] == "/"
    whole_end = after == len(pattern) or pattern[after] == "/"
    if not (whole_start and whole_end):
        out.append(".*")
        return after
    if i == 0:  # "**/rest" or "**"
        out.append("(?:.*/)?" if after < len(pattern) else ".*")
        return after + 1 if after < len(pattern) else after
    out[-1] = "(?:/.*)?"  # the "/" before the "**" goes with it
    return after


def _char_class(pattern: str, i: int, out: list[str]) -> int:
    """``[abc]``, ``[a-z]``, ``[!a-z]`` or ``[^a-z]`` (never matching ``/``)."""
    end = pattern.find("]", i + 2)
    if end < 0:
        raise ValueError(f"pattern {pattern!r}: unclosed '['")
    body = pattern[i + 1 : end]
    negated = body[0] in "!^"
    body = body[1:] if negated else body
    if not body:
        raise ValueError(f"pattern {pattern!r}: empty '[]'")
    # keep ranges ("-" between two characters), escape what else means something to re
    escaped = "".join("\\" + c if c in "\\^[]" else c for c in body)
    out.append(f"(?!/)[{'^' if negated else ''}{escaped}]")
    return end + 1


class AccessControl:
    """Decisions for one configuration. ``authenticating`` says whether any authentication
    method is configured: without one everybody is anonymous."""

    def __init__(self, config: AccessControlConfig | None, authenticating: bool) -> None:
        self.config = config
        self.authenticating = authenticating
        members = config.groups if config else {}
        self._groups: dict[str, set[str]] = {}
        for group, listed in members.items():
            for user in listed.users:
                self._groups.setdefault(user, set()).add(group)
        patterns = config.repositories if config else {}
        self._patterns = sorted(patterns, key=len, reverse=True)

    def groups_of(self, user: str, extra: Iterable[str] = ()) -> frozenset[str]:
        """The user's groups: those accessControl.groups lists it in, plus ``extra`` (from
        the directory that authenticated it)."""
        return frozenset(self._groups.get(user, set())) | frozenset(extra)

    def allows(self, identity: Identity, action: str, repo: str) -> bool:
        if identity.grant is not None:  # a registry token carries its own authorization
            wanted = {"read": "pull", "delete": "delete"}.get(action, "push")
            return identity.grant.allows("repository", repo, wanted)
        if self.config is None:
            # Nothing configured: everybody may do everything; with authentication, only
            # those who authenticated.
            return identity.user is not None or not self.authenticating
        if self._repository_allows(identity, action, repo):
            return True
        return self.is_admin(identity) and action in self._admin_actions()

    def admits_anonymous(self) -> bool:
        """Whether some repository lets anonymous callers in (zot's AnonymousPolicyExists);
        without authentication everybody is anonymous, and admitted."""
        if not self.authenticating:
            return True
        patterns = self.config.repositories.values() if self.config else []
        return any(rules.anonymousPolicy for rules in patterns)

    def is_admin(self, identity: Identity) -> bool:
        admin = self.config.adminPolicy if self.config else None
        if admin is None or identity.user is None:
            return False
        return identity.user in admin.users or bool(identity.groups & set(admin.groups))

    def may_read_metrics(self, identity: Identity) -> bool:
        metrics = self.config.metrics if self.config else None
        if metrics is None:
            return identity.user is not None or not self.authenticating
        if identity.user is None:
            return "read" in metrics.anonymousPolicy
        return identity.user in metrics.users

    def _repository_allows(self, identity: Identity, action: str, repo: str) -> bool:
        assert self.config is not None
        pattern = next((p for p in self._patterns if glob_regex(p).match(repo)), None)
        if pattern is None:
            return False
        rules = self.config.repositories[pattern]
        for policy in rules.policies:
            if action not in policy.actions:
                continue
            if identity.user is not None and identity.user in policy.users:
                return True
            if identity.groups & set(policy.groups):
                return True
        if identity.user is not None:
            return action in rules.defaultPolicy
        return action in rules.anonymousPolicy

    def _admin_actions(self) -> list[str]:
        admin = self.config.adminPolicy if self.config else None
        return list(admin.actions) if admin else []
