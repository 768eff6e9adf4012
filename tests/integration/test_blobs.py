from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.oci import error_codes, push_blob, sha256


def test_monolithic_post_then_get_and_head(client: httpx.Client, repo: str) -> None:
    data = b"hello blob"
    digest = push_blob(client, repo, data)
    response = client.get(f"/v2/{repo}/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["Docker-Content-Digest"] == digest
    head = client.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.content == b""


def test_range_requests(client: httpx.Client, repo: str) -> None:
    data = bytes(range(256)) * 10
    digest = push_blob(client, repo, data)
    partial = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert partial.status_code == 206
    assert partial.content == data[100:200]
    assert partial.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    unsatisfiable = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=9999-"})
    assert unsatisfiable.status_code == 416


def test_missing_blob(client: httpx.Client, repo: str) -> None:
    missing = sha256(b"never pushed")
    response = client.get(f"/v2/{repo}/blobs/{missing}")
    assert response.status_code == 404
    assert error_codes(response) == ["BLOB_UNKNOWN"]
    assert client.head(f"/v2/{repo}/blobs/{missing}").status_code == 404


@pytest.mark.parametrize("bad", ["sha256:short", "sha256:" + "A" * 64, "nocolon", "md5:"])
def test_malformed_digest(client: httpx.Client, repo: str, bad: str) -> None:
    response = client.get(f"/v2/{repo}/blobs/{bad}")
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]


def test_unknown_algorithm_is_just_unknown(client: httpx.Client, repo: str) -> None:
    response = client.get(f"/v2/{repo}/blobs/blake3:abcdef")
    assert response.status_code == 404


def test_sha512_blob(client: httpx.Client, repo: str) -> None:
    data = b"sha512 content"
    digest = push_blob(client, repo, data, algorithm="sha512")
    assert digest == "sha512:" + hashlib.sha512(data).hexdigest()
    fetched = client.get(f"/v2/{repo}/blobs/{digest}")
    assert fetched.content == data
    assert fetched.headers["Docker-Content-Digest"] == digest


def test_delete_blob(client: httpx.Client, repo: str) -> None:
    digest = push_blob(client, repo, b"to delete")
    assert client.delete(f"/v2/{repo}/blobs/{digest}").status_code == 202
    assert client.get(f"/v2/{repo}/blobs/{digest}").status_code == 404
    again = client.delete(f"/v2/{repo}/blobs/{digest}")
    assert again.status_code == 404
    assert error_codes(again) == ["BLOB_UNKNOWN"]


@pytest.mark.parametrize("name", ["UPPER/case", "a//b", "a/-b", "parent/blobs", "x" * 256])
def test_invalid_repository_names(client: httpx.Client, name: str) -> None:
    response = client.get(f"/v2/{name}/tags/list")
    assert response.status_code == 400
    assert error_codes(response) == ["NAME_INVALID"]


def test_head_sends_the_headers_get_sends(client: httpx.Client, repo: str) -> None:
    data = bytes(range(256)) * 4
    digest = push_blob(client, repo, data)
    url = f"/v2/{repo}/blobs/{digest}"
    got, head = client.get(url), client.head(url)
    skip = {"date"}
    assert {k: v for k, v in head.headers.items() if k not in skip} == {
        k: v for k, v in got.headers.items() if k not in skip
    }
    assert head.content == b""
    ranged = {"Range": "bytes=10-19"}
    partial_get, partial_head = client.get(url, headers=ranged), client.head(url, headers=ranged)
    assert (partial_head.status_code, partial_head.headers["Content-Range"]) == (
        partial_get.status_code,
        partial_get.headers["Content-Range"],
    )
    assert partial_head.content == b""


@pytest.mark.parametrize(
    ("range_", "status"),
    [("bytes=9999-", 416), ("bytes=-0", 416), ("bytes=x", 400), ("items=0-1", 400)],
)
@pytest.mark.parametrize("validator", [None, "etag", "last-modified"])
def test_range_errors_are_oci_errors(
    client: httpx.Client, repo: str, range_: str, status: int, validator: str | None
) -> None:
    """Also under an ``If-Range`` that matches, where the range applies (starlette would answer
    those in plain text)."""
    digest = push_blob(client, repo, bytes(100))
    url = f"/v2/{repo}/blobs/{digest}"
    headers = {"Range": range_}
    if validator is not None:
        headers["If-Range"] = client.get(url).headers[validator]
    response = client.get(url, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert error_codes(response) == ["UNSUPPORTED"]
    if status == 416:
        assert response.headers["Content-Range"] == "bytes */100"


def test_a_range_under_an_if_range_that_does_not_match_is_ignored(
    client: httpx.Client, repo: str
) -> None:
    digest = push_blob(client, repo, bytes(100))
    url = f"/v2/{repo}/blobs/{digest}"
    response = client.get(url, headers={"Range": "bytes=9999-", "If-Range": '"stale"'})
    assert (response.status_code, len(response.content)) == (200, 100)
