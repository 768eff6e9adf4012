"""What each operation needs, declared in the spec as ``x-ocireg-access``, and the check.

Every operation of the core spec and of extension fragments says who may call it::

    x-ocireg-access: {action: read, repository: name}   # an action on the repository that
                                                       # the path parameter ``name`` holds
    x-ocireg-access: anyone          # health probes, discovery, the specs themselves
    x-ocireg-access: login           # GET /v2/: challenges every caller without credentials
                                     # once authentication is configured
    x-ocireg-access: authenticated   # any authenticated user (preferences, API keys)
    x-ocireg-access: listing         # anyone; the handler lists only what the caller may read
    x-ocireg-access: metrics         # accessControl.metrics
    x-ocireg-access: admin           # accessControl.adminPolicy's users and groups (without
                                     # accessControl: any authenticated user, or anyone when
                                     # no authentication is configured)

An operation without the key is treated as ``authenticated``: a new extension endpoint is
closed to anonymous callers until its author says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

RULE_KEY = "x-ocireg-access"
Kind = Literal["anyone", "login", "authenticated", "listing", "metrics", "admin", "repository"]
_KINDS = ("anyone", "login", "authenticated", "listing", "metrics", "admin")
_ACTIONS = ("read", "create", "update", "delete")


@dataclass(frozen=True)
class Rule:
    kind: Kind
    action: str | None = None
    parameter: str | None = None  # the path parameter that names the repository


AUTHENTICATED = Rule("authenticated")
WORDS = _KINDS  # the rules that need no path parameter (for routes outside the spec)


def parse_rule(value: Any, where: str) -> Rule:
    """The rule an operation declares; ValueError naming ``where`` when it makes no sense."""
    if value is None:
        return AUTHENTICATED
    if isinstance(value, str) and value in _KINDS:
        return Rule(value)  # type: ignore[arg-type]
    if isinstance(value, dict) and set(value) == {"action", "repository"}:
        action, parameter = value["action"], value["repository"]
        if action in _ACTIONS and isinstance(parameter, str):
            return Rule("repository", action, parameter)
    raise ValueError(
        f"{where}: {RULE_KEY} must be one of {', '.join(_KINDS)} or "
        f"{{action: read|create|update|delete, repository: <path parameter>}}, not {value!r}"
    )
