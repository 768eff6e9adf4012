"""accessControl decisions, rule by rule as zot makes them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ocireg.auth.identity import ANONYMOUS, Identity
from ocireg.auth.policy import AccessControl
from ocireg.auth.policyconfig import AccessControlConfig

CONFIG: dict[str, Any] = {
    "groups": {"devs": {"users": ["dana"]}},
    "repositories": {
        "**": {"defaultPolicy": ["read"], "anonymousPolicy": ["read"]},
        "team/**": {
            "policies": [
                {"users": ["wendy"], "actions": ["read", "create"]},
                {"groups": ["devs"], "actions": ["read", "create", "update"]},
            ],
            "defaultPolicy": [],
        },
        "team/secret": {"policies": [{"users": ["wendy"], "actions": ["read"]}]},
    },
    "adminPolicy": {"users": ["root"], "groups": ["ops"], "actions": ["read", "delete"]},
}


def _access(config: dict[str, Any] | None = CONFIG, authenticating: bool = True) -> AccessControl:
    parsed = AccessControlConfig.model_validate(config) if config is not None else None
    return AccessControl(parsed, authenticating)


def _user(access: AccessControl, name: str, *groups: str) -> Identity:
    return Identity(name, "htpasswd", access.groups_of(name, groups))


def test_the_longest_matching_pattern_alone_decides() -> None:
    access = _access()
    wendy = _user(access, "wendy")
    assert access.allows(wendy, "create", "team/app")
    # team/secret matches "**", "team/**" and "team/secret": only the last one counts
    assert access.allows(wendy, "read", "team/secret")
    assert not access.allows(wendy, "create", "team/secret")
    # team/** has an empty defaultPolicy: "**"'s read for everybody does not reach it
    assert not access.allows(_user(access, "eve"), "read", "team/app")
    assert access.allows(_user(access, "eve"), "read", "other/app")


def test_groups_come_from_the_config_and_from_the_directory() -> None:
    access = _access()
    dana = _user(access, "dana")
    assert dana.groups == {"devs"}
    assert access.allows(dana, "update", "team/app")
    assert not access.allows(dana, "delete", "team/app")
    from_ldap = _user(access, "lee", "devs")
    assert access.allows(from_ldap, "update", "team/app")


def test_anonymous_gets_the_anonymous_policy_only() -> None:
    access = _access()
    assert access.allows(ANONYMOUS, "read", "other/app")
    assert not access.allows(ANONYMOUS, "create", "other/app")
    assert not access.allows(ANONYMOUS, "read", "team/app")


def test_admins_get_their_actions_everywhere_after_the_repository_rules() -> None:
    access = _access()
    root = _user(access, "root")
    assert access.allows(root, "delete", "team/secret")
    assert not access.allows(root, "create", "team/secret")
    assert access.allows(_user(access, "olga", "ops"), "delete", "anything")
    assert access.is_admin(root) and not access.is_admin(_user(access, "wendy"))


def test_no_matching_pattern_allows_nothing_but_admin() -> None:
    access = _access({"repositories": {"only/*": {"defaultPolicy": ["read"]}}})
    assert not access.allows(_user(access, "eve"), "read", "else")
    assert access.allows(_user(access, "eve"), "read", "only/one")
    assert not access.allows(_user(access, "eve"), "read", "only/one/deeper")


def test_without_access_control_authentication_decides_everything() -> None:
    access = _access(None, authenticating=True)
    assert access.allows(_user(access, "eve"), "delete", "x")
    assert not access.allows(ANONYMOUS, "read", "x")
    open_registry = _access(None, authenticating=False)
    assert open_registry.allows(ANONYMOUS, "delete", "x")


def test_the_most_specific_pattern_decides_with_doublestar_rules() -> None:
    # the pattern table itself is tests/test_repopattern.py; here, the longest match wins
    access = _access({
        "repositories": {
            "team/**": {"anonymousPolicy": ["read"]},
            "team/{api,web}": {"anonymousPolicy": []},
        }
    }, authenticating=False)  # fmt: skip
    assert access.allows(ANONYMOUS, "read", "team")
    assert access.allows(ANONYMOUS, "read", "team/db")
    assert not access.allows(ANONYMOUS, "read", "team/web")


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({"repositories": {"a/[b": {}}}, "unclosed"),
        ({"repositories": {"a\\": {}}}, "ends with an escape"),
        ({"repositories": {"**": {"defaultPolicy": ["detectManifestCollision"]}}}, "not supported"),
        ({"repositories": {"**": {"defaultPolicy": ["write"]}}}, "Input should be"),
        (
            {
                "repositories": {
                    "**": {
                        "policies": [
                            {
                                "users": ["a"],
                                "actions": ["read"],
                                "conditions": [{"expression": "true"}],
                            }
                        ]
                    }
                }
            },
            "CEL conditions",
        ),
        ({"repository": {}}, "Extra inputs"),
    ],
)
def test_bad_configuration_is_refused(config: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        AccessControlConfig.model_validate(config)


def test_metrics_readers() -> None:
    access = _access({"metrics": {"users": ["prom"]}})
    assert access.may_read_metrics(_user(access, "prom"))
    assert not access.may_read_metrics(_user(access, "eve"))
    assert not access.may_read_metrics(ANONYMOUS)
    public = _access({"metrics": {"anonymousPolicy": ["read"]}})
    assert public.may_read_metrics(ANONYMOUS)
