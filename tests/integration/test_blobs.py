from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import pytest

from tests.liveserver import live_server
from tests.oci import (
    EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    canonical,
    error_codes,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)


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


def refused_as_referenced(response: httpx.Response, manifests: list[str]) -> None:
    assert response.status_code == 405, response.text
    (error,) = response.json()["errors"]
    assert error["code"] == "DENIED"
    assert error["detail"]["manifests"] == manifests


def test_a_blob_a_manifest_references_cannot_be_deleted(client: httpx.Client, repo: str) -> None:
    document = image_manifest(client, repo, layers=[b"kept layer"])
    manifest = put_manifest(client, repo, "v1", document).headers["Docker-Content-Digest"]
    layer, config = document["layers"][0]["digest"], document["config"]["digest"]
    for digest in (layer, config):  # at once: the meta DB has not seen the push yet
        refused_as_referenced(client.delete(f"/v2/{repo}/blobs/{digest}"), [manifest])
    time.sleep(1.5)  # now it has: the answer must not change
    refused_as_referenced(client.delete(f"/v2/{repo}/blobs/{layer}"), [manifest])
    # the manifest itself is a blob of the repository too, deleted only as a manifest
    refused_as_referenced(client.delete(f"/v2/{repo}/blobs/{manifest}"), [manifest])
    assert client.get(f"/v2/{repo}/blobs/{layer}").content == b"kept layer"
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200
    # once the manifest is gone, so is the reference
    assert client.delete(f"/v2/{repo}/manifests/{manifest}").status_code == 202
    assert client.delete(f"/v2/{repo}/blobs/{layer}").status_code == 202


def test_children_of_an_index_and_referrers_count(client: httpx.Client, repo: str) -> None:
    child = image_manifest(client, repo, layers=[b"child layer"])
    child_digest = put_manifest(client, repo, sha256(canonical(child)), child).headers[
        "Docker-Content-Digest"
    ]
    size = len(canonical(child))
    entry = {"mediaType": OCI_MANIFEST, "digest": child_digest, "size": size}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    index_digest = put_manifest(client, repo, "multi", index).headers["Docker-Content-Digest"]
    refused_as_referenced(client.delete(f"/v2/{repo}/blobs/{child_digest}"), [child_digest])
    sbom = push_blob(client, repo, b"an sbom")
    referrer = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "text/spdx",
                "config": EMPTY, "subject": {"mediaType": OCI_INDEX, "digest": index_digest,
                "size": len(canonical(index))},
                "layers": [{"mediaType": "text/spdx", "digest": sbom, "size": 7}]}  # fmt: skip
    push_blob(client, repo, b"{}")
    referrer_digest = put_manifest(client, repo, sha256(canonical(referrer)), referrer).headers[
        "Docker-Content-Digest"
    ]
    refused_as_referenced(client.delete(f"/v2/{repo}/blobs/{sbom}"), [referrer_digest])


def test_another_repositorys_reference_does_not_count(tmp_path: Path) -> None:
    """References are per repository, with dedupe sharing one file or not."""
    for dedupe in (False, True):
        with (
            live_server(tmp_path / str(dedupe), {"storage": {"dedupe": dedupe}}) as live,
            httpx.Client(base_url=live.url) as client,
        ):
            document = image_manifest(client, "used/here", layers=[b"shared"])
            put_manifest(client, "used/here", "v1", document)
            layer = push_blob(client, "unused/there", b"shared")
            assert client.delete(f"/v2/unused/there/blobs/{layer}").status_code == 202
            assert client.get("/v2/used/here/blobs/" + layer).content == b"shared"


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
