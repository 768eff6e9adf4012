"""LDAP authentication against a real slapd (tests/auth/slapd.py has the directory)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ocireg.auth.ldap import LdapAuth, LdapConfig, LdapUnavailable, group_name, user_filter
from tests.auth.slapd import ALICE, BOB, CAROL, DAVE, ODD, Slapd, group_dn
from tests.liveserver import free_port

ADMINS_ONLY = f"(memberOf={group_dn('admins')})"


def ldap_auth(server: Slapd, **overrides: Any) -> LdapAuth:
    return LdapAuth(LdapConfig.model_validate(server.ldap_config(**overrides)))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the flow -----------------------------------------------------------------------------------


def test_alice_gets_her_groups(slapd: Slapd) -> None:
    groups = ldap_auth(slapd).authenticate("alice", ALICE.password)
    assert groups is not None
    assert sorted(groups) == ["admins", "devs"]


def test_each_user_gets_only_their_groups(slapd: Slapd) -> None:
    auth = ldap_auth(slapd)
    assert auth.authenticate("bob", BOB.password) == ["devs"]
    # A user in no group is authenticated all the same: [] is not None.
    assert auth.authenticate("dave", DAVE.password) == []


def test_without_group_attribute_groups_are_empty(slapd: Slapd) -> None:
    assert ldap_auth(slapd, userGroupAttribute=None).authenticate("alice", ALICE.password) == []


def test_wrong_password(slapd: Slapd) -> None:
    auth = ldap_auth(slapd)
    assert auth.authenticate("alice", BOB.password) is None
    assert auth.authenticate("alice", ALICE.password + "x") is None


def test_unknown_user(slapd: Slapd) -> None:
    assert ldap_auth(slapd).authenticate("mallory", ALICE.password) is None


def test_empty_password_never_authenticates(slapd: Slapd) -> None:
    assert ldap_auth(slapd).authenticate("alice", "") is None


def test_empty_password_is_refused_before_asking_the_directory() -> None:
    # Nothing listens there: reaching the server would raise LdapUnavailable.
    auth = LdapAuth(
        LdapConfig(
            address="127.0.0.1",
            port=free_port(),
            insecure=True,
            baseDN="dc=example,dc=org",
            userAttribute="uid",
            bindDN="cn=reader,dc=example,dc=org",
            bindPassword="x",
        )
    )
    assert auth.authenticate("alice", "") is None
    assert auth.authenticate("", ALICE.password) is None


@pytest.mark.parametrize(
    "name",
    ["*", "al*", "*ice", "alice)(uid=*", "*)(uid=alice", "alice)(|(uid=*", "alic\\65", "alice\x00"],
)
def test_filter_injection_matches_nothing(slapd: Slapd, name: str) -> None:
    # Restricted to the admins (alice alone), any widened filter would find exactly alice and
    # her password would then be accepted.
    auth = ldap_auth(slapd, userFilter=ADMINS_ONLY)
    assert auth.authenticate(name, ALICE.password) is None
    assert auth.authenticate("alice", ALICE.password) is not None


def test_names_with_filter_metacharacters_are_found(slapd: Slapd) -> None:
    # Escaped once, exactly: the name matches itself and nothing else.
    assert ODD.uid == "o\\brien*(x)"
    auth = ldap_auth(slapd)
    assert auth.authenticate(ODD.uid, ODD.password) == ["devs"]
    assert auth.authenticate("o\\brien*", ODD.password) is None


def test_user_filter_restricts(slapd: Slapd) -> None:
    auth = ldap_auth(slapd, userFilter=ADMINS_ONLY)
    assert auth.authenticate("alice", ALICE.password) is not None
    assert auth.authenticate("bob", BOB.password) is None


def test_one_level_search_misses_nested_users(slapd: Slapd) -> None:
    assert ldap_auth(slapd, subtreeSearch=False).authenticate("carol", CAROL.password) is None


def test_subtree_search_finds_nested_users(slapd: Slapd) -> None:
    auth = ldap_auth(slapd, subtreeSearch=True)
    assert auth.authenticate("carol", CAROL.password) == ["contractors"]
    # Her password is not ASCII: it must reach the server as UTF-8, not approximated.
    assert auth.authenticate("carol", CAROL.password.replace("ü", "u")) is None


def test_ambiguous_user_is_refused(slapd: Slapd) -> None:
    # Two "dave" entries exist, one per level: one level finds one, the subtree finds both.
    assert ldap_auth(slapd, subtreeSearch=False).authenticate("dave", DAVE.password) == []
    assert ldap_auth(slapd, subtreeSearch=True).authenticate("dave", DAVE.password) is None


def test_user_attribute_other_than_uid(slapd: Slapd) -> None:
    # The seeded cn is the capitalised uid.
    assert ldap_auth(slapd, userAttribute="cn").authenticate("Bob", BOB.password) == ["devs"]


# -- the service account ------------------------------------------------------------------------


def credentials(tmp_path: Path, content: object) -> str:
    path = tmp_path / "ldap-credentials.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_credentials_file(slapd: Slapd, tmp_path: Path) -> None:
    path = credentials(
        tmp_path, {"bindDN": slapd.service_dn, "bindPassword": slapd.service_password}
    )
    auth = ldap_auth(slapd, bindDN=None, bindPassword=None, credentialsFile=path)
    assert auth.authenticate("bob", BOB.password) == ["devs"]


def test_credentials_file_wins_over_inline_keys(slapd: Slapd, tmp_path: Path) -> None:
    path = credentials(
        tmp_path, {"bindDN": slapd.service_dn, "bindPassword": slapd.service_password}
    )
    auth = ldap_auth(slapd, bindPassword="wrong", credentialsFile=path)
    assert auth.authenticate("bob", BOB.password) == ["devs"]


def test_wrong_credentials_file_password_is_unavailable(slapd: Slapd, tmp_path: Path) -> None:
    path = credentials(tmp_path, {"bindDN": slapd.service_dn, "bindPassword": "wrong"})
    auth = ldap_auth(slapd, bindDN=None, bindPassword=None, credentialsFile=path)
    with pytest.raises(LdapUnavailable, match="service bind"):
        auth.authenticate("bob", BOB.password)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read"),
        ("{not json", "not JSON"),
        ('["cn=reader"]', "want"),
        ({"bindPassword": "x"}, "bindDN must be"),
        ({"bindDN": "cn=reader", "bindPassword": 7}, "bindPassword must be"),
    ],
)
def test_bad_credentials_file(slapd: Slapd, tmp_path: Path, content: object, problem: str) -> None:
    path = str(tmp_path / "absent.json") if content is None else credentials(tmp_path, content)
    config = LdapConfig.model_validate(slapd.ldap_config(bindDN=None, credentialsFile=path))
    with pytest.raises(ValueError, match=problem):
        LdapAuth(config)


def test_wrong_service_password_is_unavailable(slapd: Slapd) -> None:
    auth = ldap_auth(slapd, bindPassword="wrong")
    with pytest.raises(LdapUnavailable, match="service bind"):
        auth.authenticate("alice", ALICE.password)


def test_anonymous_service_bind_sees_no_users(slapd: Slapd) -> None:
    # No password: an anonymous bind, as zot does. This directory shows anonymous nothing.
    with pytest.raises(LdapUnavailable, match="search"):
        ldap_auth(slapd, bindPassword=None).authenticate("alice", ALICE.password)


def test_missing_base_dn_is_unavailable(slapd: Slapd) -> None:
    auth = ldap_auth(slapd, baseDN="ou=nowhere,dc=example,dc=org")
    with pytest.raises(LdapUnavailable, match="search"):
        auth.authenticate("alice", ALICE.password)


def test_stopped_server_is_unavailable(private_slapd: Slapd) -> None:
    auth = ldap_auth(private_slapd)
    assert auth.authenticate("alice", "wrong") is None
    private_slapd.stop()
    with pytest.raises(LdapUnavailable, match="refused"):
        auth.authenticate("bob", BOB.password)


def test_nothing_listening_is_unavailable(slapd: Slapd) -> None:
    with pytest.raises(LdapUnavailable):
        ldap_auth(slapd, port=free_port()).authenticate("alice", ALICE.password)


# -- the cache ----------------------------------------------------------------------------------


def test_cache_serves_a_repeat_success(private_slapd: Slapd) -> None:
    clock = FakeClock()
    config = LdapConfig.model_validate(private_slapd.ldap_config())
    auth = LdapAuth(config, cache_ttl=60, clock=clock)
    assert auth.authenticate("alice", ALICE.password) is not None
    private_slapd.stop()
    # Served without the directory, which is gone.
    clock.now += 59
    groups = auth.authenticate("alice", ALICE.password)
    assert groups is not None and sorted(groups) == ["admins", "devs"]
    # A wrong password, or another user, is never answered from the cache: it goes to the
    # directory, which is why they now find it unavailable.
    with pytest.raises(LdapUnavailable):
        auth.authenticate("alice", ALICE.password + "x")
    with pytest.raises(LdapUnavailable):
        auth.authenticate("bob", ALICE.password)
    clock.now += 2  # past the 60 s
    with pytest.raises(LdapUnavailable):
        auth.authenticate("alice", ALICE.password)


def test_cache_does_not_serve_a_wrong_password(slapd: Slapd) -> None:
    auth = ldap_auth(slapd)
    assert auth.authenticate("alice", ALICE.password) is not None
    assert auth.authenticate("alice", ALICE.password + "x") is None
    assert auth.authenticate("alice", "") is None


def test_failures_are_not_cached(slapd: Slapd) -> None:
    auth = ldap_auth(slapd)
    assert auth.authenticate("bob", ALICE.password) is None
    assert auth.authenticate("bob", BOB.password) == ["devs"]


def test_cache_holds_no_plain_password(slapd: Slapd) -> None:
    auth = ldap_auth(slapd)
    assert auth.authenticate("alice", ALICE.password) is not None
    assert ALICE.password not in repr(vars(auth._cache))
    assert ALICE.password.encode() not in repr(vars(auth._cache)).encode()


def test_cached_groups_cannot_be_changed_by_the_caller(slapd: Slapd) -> None:
    auth = ldap_auth(slapd)
    groups = auth.authenticate("bob", BOB.password)
    assert groups == ["devs"]
    groups.append("admins")
    assert auth.authenticate("bob", BOB.password) == ["devs"]


def test_concurrent_logins(slapd: Slapd) -> None:
    auth = LdapAuth(LdapConfig.model_validate(slapd.ldap_config()), cache_ttl=0)
    logins = [("alice", ALICE.password), ("bob", BOB.password), ("bob", "wrong")] * 8
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda login: auth.authenticate(*login), logins))
    expected = [["devs", "admins"], ["devs"], None] * 8
    assert results == expected


# -- TLS ----------------------------------------------------------------------------------------


def test_start_tls_with_ca_cert(slapd: Slapd) -> None:
    auth = ldap_auth(slapd, insecure=False, startTLS=True, caCert=str(slapd.ca_cert))
    assert auth.authenticate("bob", BOB.password) == ["devs"]


def test_ldaps_when_neither_insecure_nor_start_tls(slapd: Slapd) -> None:
    auth = ldap_auth(slapd, insecure=False, port=slapd.ldaps_port, caCert=str(slapd.ca_cert))
    assert auth.authenticate("bob", BOB.password) == ["devs"]


def test_ldaps_is_not_plain_ldap(slapd: Slapd) -> None:
    # The plain port does not speak TLS: insecure false without startTLS must not fall back.
    with pytest.raises(LdapUnavailable):
        ldap_auth(slapd, insecure=False, caCert=str(slapd.ca_cert)).authenticate(
            "bob", BOB.password
        )


@pytest.mark.parametrize("start_tls", [True, False])
def test_untrusted_certificate_is_unavailable(slapd: Slapd, start_tls: bool) -> None:
    port = slapd.port if start_tls else slapd.ldaps_port
    auth = ldap_auth(slapd, insecure=False, startTLS=start_tls, port=port)
    with pytest.raises(LdapUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        auth.authenticate("bob", BOB.password)


def test_certificate_must_name_the_address(slapd: Slapd) -> None:
    # The certificate names 127.0.0.1 only; the server answers on other_host too.
    auth = ldap_auth(
        slapd, address=slapd.other_host, insecure=False, startTLS=True, caCert=str(slapd.ca_cert)
    )
    with pytest.raises(LdapUnavailable, match=r"not valid for '127\.0\.0\.2'"):
        auth.authenticate("bob", BOB.password)


@pytest.mark.parametrize("start_tls", [True, False])
def test_skip_verify(slapd: Slapd, start_tls: bool) -> None:
    port = slapd.port if start_tls else slapd.ldaps_port
    auth = ldap_auth(
        slapd,
        address=slapd.other_host,
        insecure=False,
        startTLS=start_tls,
        port=port,
        skipVerify=True,
    )
    assert auth.authenticate("bob", BOB.password) == ["devs"]


def test_bad_ca_cert_is_a_startup_error(slapd: Slapd, tmp_path: Path) -> None:
    config = LdapConfig.model_validate(
        slapd.ldap_config(startTLS=True, caCert=str(tmp_path / "absent.pem"))
    )
    with pytest.raises(ValueError, match="caCert"):
        LdapAuth(config)


# -- configuration ------------------------------------------------------------------------------

MINIMAL = {"address": "ldap.example.org", "baseDN": "dc=example,dc=org", "userAttribute": "uid"}


def test_config_defaults() -> None:
    config = LdapConfig.model_validate({**MINIMAL, "bindDN": "cn=reader"})
    assert config.port == 389
    assert not (config.insecure or config.startTLS or config.skipVerify or config.subtreeSearch)


def test_config_accepts_zot_keys() -> None:
    config = LdapConfig.model_validate(
        {
            **MINIMAL,
            "port": 636,
            "insecure": False,
            "startTLS": False,
            "skipVerify": False,
            "subtreeSearch": True,
            "userFilter": "(objectClass=person)",
            "userGroupAttribute": "memberOf",
            "caCert": "/etc/ssl/ca.pem",
            "credentialsFile": "/etc/zot/ldap.json",
        }
    )
    assert config.credentialsFile == "/etc/zot/ldap.json"
    assert user_filter(config, "a*") == "(&(uid=a\\2a)(objectClass=person))"


@pytest.mark.parametrize(
    "change",
    [
        {},  # neither credentialsFile nor bindDN
        {"bindDN": "cn=r", "bindpassword": "x"},  # unknown key
        {"bindDN": "cn=r", "userAttribute": "uid)(x"},
        {"bindDN": "cn=r", "userGroupAttribute": "memberOf,cn"},
        {"bindDN": "cn=r", "userFilter": "objectClass=person"},
        {"bindDN": "cn=r", "userFilter": "(&(objectClass=person)"},
        {"bindDN": "cn=r", "port": 0},
    ],
)
def test_config_rejects(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LdapConfig.model_validate({**MINIMAL, **change})


def test_blank_user_filter_is_no_filter() -> None:
    config = LdapConfig.model_validate({**MINIMAL, "bindDN": "cn=r", "userFilter": "  "})
    assert user_filter(config, "alice") == "(uid=alice)"


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("cn=devs,ou=groups,dc=example,dc=org", "devs"),
        ("CN=Domain Admins,OU=Groups,DC=corp", "Domain Admins"),
        ("devs", "devs"),
        ("cn=R\\2CD,ou=groups", "R,D"),
        ("cn=a\\,b,ou=groups", "a,b"),
        ("cn=caf\\c3\\a9,ou=groups", "café"),
        ("cn=x+uid=y,ou=groups", "x"),
    ],
)
def test_group_name(value: str, name: str) -> None:
    assert group_name(value) == name


def test_remembered_answers_only_from_the_cache(slapd: Slapd) -> None:
    auth = ldap_auth(slapd)
    assert auth.remembered("alice", ALICE.password) is None  # never asked yet
    assert auth.authenticate("alice", ALICE.password) is not None
    remembered = auth.remembered("alice", ALICE.password)
    assert remembered is not None and sorted(remembered) == ["admins", "devs"]
    assert auth.remembered("alice", ALICE.password + "x") is None
    assert auth.remembered("alice", "") is None
