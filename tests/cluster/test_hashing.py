"""SipHash-2-4 and the owner of a repository, checked against published vectors."""

from __future__ import annotations

from collections import Counter

import pytest

from ocireg.cluster.hashing import owner_index, siphash24


def test_siphash_matches_the_reference_vectors() -> None:
    # From the SipHash paper's reference code (vectors.h): key 00..0f, message 00..(n-1).
    key = bytes(range(16))
    assert siphash24(key, b"") == 0x726FDB47DD0E0E31
    assert siphash24(key, bytes(range(8))) == 0x93F5F5799A932462
    assert siphash24(key, bytes(range(15))) == 0xA129CA6149BE45E5


def test_the_owner_is_the_one_zot_computes() -> None:
    # zot's pkg/cluster/cluster_test.go: ComputeTargetMember("loremipsumdolors",
    # ["member1", "member2"], "zot-test") is index 1.
    assert owner_index("loremipsumdolors", 2, "zot-test") == 1


def test_repositories_spread_over_the_members() -> None:
    counts = Counter(owner_index("loremipsumdolors", 3, f"team/app{k}") for k in range(3000))
    assert set(counts) == {0, 1, 2}
    assert min(counts.values()) > 900


def test_a_key_that_is_not_16_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        siphash24(b"short", b"x")
