from __future__ import annotations

import pytest

from ocireg.errors import ErrorCode, RegistryError
from ocireg.names import check_name, check_tag, is_tag, name_problem, repository_of


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


@pytest.mark.parametrize(
    ("path", "repo"),
    [
        ("/v2/a/b/tags/list", "a/b"),
        ("/v2/a/manifests/latest", "a"),
        ("/v2/x/blobs/uploads/", "x"),
        ("/v2/x/blobs/uploads/0f3c", "x"),
        ("/v2/a/blobs/sha256:00", "a"),
        ("/v2/a/referrers/sha256:00", "a"),
        ("/v2/a/blobs/b/manifests/v1", "a/blobs/b"),  # a name may hold such components
        ("/v2/", None),
        ("/v2/_catalog", None),
        ("/livez", None),
    ],
)
def test_repository_of(path: str, repo: str | None) -> None:
    assert repository_of(path) == repo
