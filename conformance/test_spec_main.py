"""The spec's main-branch additions (opt-in: OCI_TEST_SPEC_MAIN, or --workflows main).

Not in v1.1.1: pushing one manifest under several tags with ``?tag=`` answered by ``OCI-Tag``,
cancelling an upload with DELETE, sha512 blobs, and HEAD that MUST carry the digest and length.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest

from ocireg.conformance.checks import expect, expect_error_code, expect_header, expect_status
from ocireg.conformance.content import image, random_blob
from ocireg.conformance.ops import Registry, session_path, with_query
from ocireg.conformance.settings import Settings

pytestmark = pytest.mark.workflow("main")

TAGGED_PUSH = "Pushing Manifests (end-7b) [main]"
CANCEL = "Canceling an upload (end-14) [main]"
SHA512 = "Pushing blobs (end-4c) [main]"
HEAD = "Checking if content exists in the registry (end-3) [main]"
OCTET = {"Content-Type": "application/octet-stream"}


def test_push_by_digest_with_tags(
    client: httpx.Client, registry: Registry, repo: str, settings: Settings
) -> None:
    manifest = image(layers=1)
    registry.push_blobs(repo, manifest)
    tags = [f"multi-{settings.run_id}-{n}" for n in range(3)]
    response = client.put(
        f"/v2/{repo}/manifests/{manifest.digest}",
        params=[("tag", tag) for tag in tags],
        content=manifest.body,
        headers={"Content-Type": manifest.media_type},
    )
    expect_status(response, 201, TAGGED_PUSH)
    answered = [v.strip() for h in response.headers.get_list("OCI-Tag") for v in h.split(",")]
    expect(sorted(answered) == tags, TAGGED_PUSH, f"OCI-Tag listed {answered}, expected {tags}")
    for tag in tags:
        got = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": manifest.media_type})
        expect_status(got, 200, TAGGED_PUSH)
        expect(got.content == manifest.body, TAGGED_PUSH, f"tag {tag} serves other bytes")


def test_cancel_upload(client: httpx.Client, repo: str) -> None:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    expect_status(response, 202, CANCEL)
    location = session_path(expect_header(response, "Location", CANCEL))
    client.patch(location, content=b"partial", headers=OCTET)
    response = client.delete(location)
    expect_status(response, 204, CANCEL)
    status = client.get(location)
    expect_status(status, 404, CANCEL + ": the cancelled upload is unknown")
    expect_error_code(status, ("BLOB_UPLOAD_UNKNOWN",), CANCEL)


def test_sha512_blob(client: httpx.Client, repo: str) -> None:
    blob = random_blob(4096, algorithm="sha512")
    response = client.post(f"/v2/{repo}/blobs/uploads/?digest-algorithm=sha512")
    expect_status(response, (201, 202), SHA512)
    location = session_path(expect_header(response, "Location", SHA512))
    response = client.put(
        with_query(location, digest=blob.digest), content=blob.data, headers=OCTET
    )
    expect_status(response, 201, SHA512)
    got = client.get(f"/v2/{repo}/blobs/{blob.digest}")
    expect_status(got, 200, SHA512)
    expect(hashlib.sha512(got.content).hexdigest() == blob.digest.split(":")[1], SHA512, "bytes")


def test_head_manifest_must_carry_digest_and_length(
    client: httpx.Client, registry: Registry, repo: str
) -> None:
    manifest = image(layers=1)
    registry.push_manifest(repo, manifest.digest, manifest)
    response = client.head(f"/v2/{repo}/manifests/{manifest.digest}")
    expect_status(response, 200, HEAD)
    digest = expect_header(response, "Docker-Content-Digest", HEAD)
    length = expect_header(response, "Content-Length", HEAD)
    expect(digest == manifest.digest, HEAD, f"Docker-Content-Digest {digest}")
    expect(length == str(len(manifest.body)), HEAD, f"Content-Length {length}")
