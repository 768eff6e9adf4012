"""``http.accessControl`` as zot reads it, and the one question it answers: may this identity
do this action on this repository?

zot's rules (``pkg/api/authz.go``), kept exactly:

* the repository pattern that matches and is longest (most specific) is the only one consulted;
* in it, a policy naming the user, or one of the user's groups, with the action allows it; else
  ``defaultPolicy`` allows an authenticated user, ``anonymousPolicy`` an anonymous one;
* failing that, ``adminPolicy`` allows its users and groups its actions on every repository.

Repository patterns are doublestar globs, compiled by :mod:`ocireg.repopattern` as every
other repository pattern is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ocireg.auth.identity import Identity
from ocireg.repopattern import matches

if TYPE_CHECKING:
    from ocireg.auth.policyconfig import AccessControlConfig


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

    def readable(self, identity: Identity, names: Iterable[str]) -> Iterator[str]:
        """Those of ``names`` that ``identity`` may read, in order, lazily (a catalog or a
        search filters every repository through it)."""
        return (name for name in names if self.allows(identity, "read", name))

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

    def may_administer(self, identity: Identity) -> bool:
        """Registry-wide administration (the client report): adminPolicy's users and groups;
        without accessControl, as every other action is decided then."""
        if self.config is None:
            return identity.user is not None or not self.authenticating
        return self.is_admin(identity)

    def may_read_metrics(self, identity: Identity) -> bool:
        metrics = self.config.metrics if self.config else None
        if metrics is None:
            return identity.user is not None or not self.authenticating
        if identity.user is None:
            return "read" in metrics.anonymousPolicy
        return identity.user in metrics.users

    def _repository_allows(self, identity: Identity, action: str, repo: str) -> bool:
        assert self.config is not None
        pattern = next((p for p in self._patterns if matches(p, repo)), None)
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
