from __future__ import annotations

import pytest

from ocireg.errors import ErrorCode, RegistryError
from ocireg.names import check_name, check_tag, is_tag, name_problem


@pytest.mark.parametrize(
    "name", ["a", "a/b", "a-b", "a--b", "a__b", "a.b", "a_b/c.d/e-f", "x/blobsy", "blobs/x"]
)
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("A", "must match"),
        ("a//b", "must match"),
        ("-a", "must match"),
        ("a_", "must match"),
        ("a___b", "must match"),
        ("a/", "must match"),
        ("a" * 256, "longer than 255"),
        ("a/blobs", "reserved"),
        ("a/index.json", "reserved"),
        ("a/b/oci-layout", "reserved"),
    ],
)
def test_invalid_names(name: str, why: str) -> None:
    problem = name_problem(name)
    assert problem is not None and why in problem
    with pytest.raises(RegistryError) as raised:
        check_name(name)
    assert raised.value.code is ErrorCode.NAME_INVALID


@pytest.mark.parametrize("tag", ["latest", "v1.0", "_x", "A-b.c_d", "a" * 128])
def test_valid_tags(tag: str) -> None:
    assert is_tag(tag)
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a" * 129, "a:b", "a/b"])
def test_invalid_tags(tag: str) -> None:
    assert not is_tag(tag)
    with pytest.raises(RegistryError) as raised:
        check_tag(tag)
    assert raised.value.code is ErrorCode.TAG_INVALID
