"""Who a request comes from, as authentication found out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

SCOPE_KEY = "ocireg.identity"


class Grant(Protocol):
    """What a registry token authorizes (its ``access`` claim), instead of accessControl."""

    def allows(self, type: str, name: str, action: str) -> bool: ...


@dataclass(frozen=True)
class Identity:
    user: str | None  # None: anonymous
    # how it was established: htpasswd, ldap, bearer, apikey, mtls, openid (a browser session
    # carries the method of its login)
    method: str = "anonymous"
    groups: frozenset[str] = field(default_factory=frozenset)
    grant: Grant | None = None

    @property
    def anonymous(self) -> bool:
        return self.user is None


ANONYMOUS = Identity(None)


def identity_of(scope: Mapping[str, Any]) -> Identity:
    """The request's identity; anonymous when no authentication ran (none is configured)."""
    identity: Identity = scope.get(SCOPE_KEY, ANONYMOUS)
    return identity
