"""Each member finds itself in ``cluster.members`` as zot does: its port, and an address it
listens on (any address of the machine when it listens on all of them)."""

from __future__ import annotations

import pytest

from ocireg.cluster.members import NotAMember, identify
from ocireg.cluster.settings import ClusterConfig

KEY = "loremipsumdolors"


def _config(*members: str) -> ClusterConfig:
    return ClusterConfig(members=list(members), hashKey=KEY)


def test_the_member_with_this_address_and_port() -> None:
    found = identify(
        _config("127.0.0.1:7001", "127.0.0.1:7002", "192.0.2.9:7002"), "127.0.0.1", 7002
    )
    assert found.me == 1
    assert found.others == ("127.0.0.1:7001", "192.0.2.9:7002")


def test_a_name_that_resolves_to_the_address_matches() -> None:
    assert identify(_config("192.0.2.9:7001", "localhost:7001"), "127.0.0.1", 7001).me == 1


def test_listening_everywhere_matches_any_local_address_but_no_other() -> None:
    assert identify(_config("192.0.2.9:7001", "127.0.0.1:7001"), "0.0.0.0", 7001).me == 1
    with pytest.raises(NotAMember, match="found none"):
        identify(_config("192.0.2.9:7001"), "0.0.0.0", 7001)


def test_two_members_that_are_both_this_instance_are_refused() -> None:
    with pytest.raises(NotAMember, match=r"found 127\.0\.0\.1:7001, localhost:7001"):
        identify(_config("127.0.0.1:7001", "localhost:7001"), "127.0.0.1", 7001)
