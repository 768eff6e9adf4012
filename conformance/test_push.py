"""Push: blobs (monolithic, streamed, chunked), mounts and manifests (spec §Push)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from ocireg.conformance.checks import (
    describe,
    expect,
    expect_error_code,
    expect_header,
    expect_status,
)
from ocireg.conformance.content import Blob, Manifest, image, random_blob
from ocireg.conformance.ops import Registry, session_path, with_query
from ocireg.conformance.settings import Settings

pytestmark = pytest.mark.workflow("push")

POST_PUT = "POST then PUT (end-4a, end-6)"
SINGLE_POST = "Single POST (end-4b)"
CHUNKED = "Pushing a blob in chunks (end-5, end-13)"
MOUNT = "Mounting a blob from another repository (end-11)"
MANIFESTS = "Pushing Manifests (end-7)"
SUBJECT = "Pushing Manifests with Subject (end-7)"
ERRORS = "Error Codes"
OCTET = {"Content-Type": "application/octet-stream"}


def start(client: httpx.Client, repo: str, section: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    expect_status(response, 202, section)
    return session_path(expect_header(response, "Location", section))


def patch(client: httpx.Client, location: str, data: bytes, start_at: int) -> httpx.Response:
    headers = {**OCTET, "Content-Range": f"{start_at}-{start_at + len(data) - 1}"}
    return client.patch(location, content=data, headers=headers)


def assert_pullable(client: httpx.Client, repo: str, blob: Blob, section: str) -> None:
    response = client.get(f"/v2/{repo}/blobs/{blob.digest}")
    expect_status(response, 200, section)
    expect(response.content == blob.data, section, "the pushed blob reads back with other bytes")


def test_post_then_put(client: httpx.Client, repo: str) -> None:
    blob = random_blob(1024)
    location = start(client, repo, POST_PUT)
    response = client.put(
        with_query(location, digest=blob.digest), content=blob.data, headers=OCTET
    )
    expect_status(response, 201, POST_PUT)
    expect_header(response, "Location", POST_PUT)
    assert_pullable(client, repo, blob, POST_PUT)


def test_single_post(client: httpx.Client, repo: str) -> None:
    blob = random_blob(1024)
    url = f"/v2/{repo}/blobs/uploads/?digest={blob.digest}"
    response = client.post(url, content=blob.data, headers=OCTET)
    expect_status(response, (201, 202), SINGLE_POST)
    location = expect_header(response, "Location", SINGLE_POST)
    if response.status_code == 202:  # registries without single POST fall back to POST then PUT
        response = client.put(
            with_query(session_path(location), digest=blob.digest), content=blob.data, headers=OCTET
        )
        expect_status(response, 201, POST_PUT)
    assert_pullable(client, repo, blob, SINGLE_POST)


def test_streamed_patch_then_put(client: httpx.Client, repo: str) -> None:
    blob = random_blob(4096)
    location = start(client, repo, CHUNKED)
    response = client.patch(location, content=blob.data, headers=OCTET)
    expect_status(response, 202, CHUNKED + " streamed")
    location = session_path(expect_header(response, "Location", CHUNKED))
    response = client.put(with_query(location, digest=blob.digest))
    expect_status(response, 201, CHUNKED)
    assert_pullable(client, repo, blob, CHUNKED)


def test_chunked_upload_with_status(client: httpx.Client, repo: str) -> None:
    blob = random_blob(3000)
    first, second = blob.data[:1000], blob.data[1000:]
    location = start(client, repo, CHUNKED)
    response = patch(client, location, first, 0)
    expect_status(response, 202, CHUNKED)
    location = session_path(expect_header(response, "Location", CHUNKED))
    received = expect_header(response, "Range", CHUNKED)
    expect(received == "0-999", CHUNKED, f"Range after the first chunk is {received!r}, not 0-999")
    status = client.get(location)
    expect_status(status, 204, CHUNKED + " upload status")
    expect(status.headers.get("Range") == "0-999", CHUNKED, f"{describe(status)}: Range not 0-999")
    expect_header(status, "Location", CHUNKED)
    response = patch(client, location, second, 1000)
    expect_status(response, 202, CHUNKED)
    location = session_path(expect_header(response, "Location", CHUNKED))
    response = client.put(with_query(location, digest=blob.digest))
    expect_status(response, 201, CHUNKED)
    assert_pullable(client, repo, blob, CHUNKED)


def test_out_of_order_chunk_is_416(client: httpx.Client, repo: str) -> None:
    blob = random_blob(3000)
    location = start(client, repo, CHUNKED)
    response = patch(client, location, blob.data[:1000], 0)
    expect_status(response, 202, CHUNKED)
    location = session_path(expect_header(response, "Location", CHUNKED))
    response = patch(client, location, blob.data[2000:], 2000)
    expect_status(response, 416, CHUNKED + " out-of-order chunk")


def test_chunk_resent_to_stale_location_is_416(client: httpx.Client, repo: str) -> None:
    blob = random_blob(2000)
    stale = start(client, repo, CHUNKED)
    response = patch(client, stale, blob.data[:1000], 0)
    expect_status(response, 202, CHUNKED)
    response = patch(client, stale, blob.data[:1000], 0)
    expect_status(response, 416, CHUNKED + " chunk re-sent to a stale location")
    status = client.get(stale)
    expect_status(status, 204, CHUNKED + " upload status")
    expect(status.headers.get("Range") == "0-999", CHUNKED, f"{describe(status)}: Range not 0-999")
    expect_header(status, "Location", CHUNKED)


def test_unknown_upload_is_404(client: httpx.Client, repo: str) -> None:
    response = client.get(f"/v2/{repo}/blobs/uploads/{uuid.uuid4()}")
    expect_status(response, 404, CHUNKED + " upload status")
    expect_error_code(response, ("BLOB_UPLOAD_UNKNOWN",), ERRORS)


def test_digest_mismatch_is_400(client: httpx.Client, repo: str) -> None:
    blob, other = random_blob(512), random_blob(512)
    location = start(client, repo, POST_PUT)
    response = client.put(
        with_query(location, digest=other.digest), content=blob.data, headers=OCTET
    )
    expect_status(response, 400, POST_PUT + " digest mismatch")
    expect_error_code(response, ("DIGEST_INVALID",), ERRORS)


def test_mount_from_another_repository(
    client: httpx.Client, registry: Registry, repo: str, other_repo: str
) -> None:
    blob = random_blob(2048)
    registry.push_blob(repo, blob)
    response = client.post(f"/v2/{other_repo}/blobs/uploads/?mount={blob.digest}&from={repo}")
    expect_status(response, 201, MOUNT)
    expect_header(response, "Location", MOUNT)
    digest = response.headers.get("Docker-Content-Digest")
    expect(digest in (None, blob.digest), MOUNT, f"Docker-Content-Digest {digest} is wrong")
    assert_pullable(client, other_repo, blob, MOUNT)


def test_mount_without_from(
    client: httpx.Client, registry: Registry, repo: str, other_repo: str, settings: Settings
) -> None:
    blob = random_blob(2048)
    registry.push_blob(repo, blob)
    response = client.post(f"/v2/{other_repo}/blobs/uploads/?mount={blob.digest}")
    automatic = settings.automatic_crossmount
    allowed = {True: (201,), False: (202,), None: (201, 202)}[automatic]
    expect_status(response, allowed, MOUNT + " automatic mount (OCI_AUTOMATIC_CROSSMOUNT)")
    expect_header(response, "Location", MOUNT)
    if response.status_code == 201:
        assert_pullable(client, other_repo, blob, MOUNT)


def test_mount_of_missing_blob_is_an_upload(
    client: httpx.Client, repo: str, other_repo: str
) -> None:
    missing = random_blob(16)
    response = client.post(f"/v2/{other_repo}/blobs/uploads/?mount={missing.digest}&from={repo}")
    expect_status(response, 202, MOUNT + " a blob that cannot be mounted")
    expect_header(response, "Location", MOUNT)


def push_and_read(client: httpx.Client, registry: Registry, repo: str, manifest: Manifest) -> None:
    registry.push_blobs(repo, manifest)
    response = registry.put_manifest(repo, manifest.digest, manifest)
    expect_status(response, 201, MANIFESTS)
    expect_header(response, "Location", MANIFESTS)
    digest = response.headers.get("Docker-Content-Digest")
    expect(digest in (None, manifest.digest), MANIFESTS, f"Docker-Content-Digest {digest} is wrong")
    got = client.get(
        f"/v2/{repo}/manifests/{manifest.digest}", headers={"Accept": manifest.media_type}
    )
    expect_status(got, 200, MANIFESTS)
    expect(got.content == manifest.body, MANIFESTS, "the manifest was not stored byte for byte")


def test_manifest_with_layers(client: httpx.Client, registry: Registry, repo: str) -> None:
    push_and_read(client, registry, repo, image(layers=3))


def test_manifest_without_layers(client: httpx.Client, registry: Registry, repo: str) -> None:
    push_and_read(client, registry, repo, image(layers=0))


def test_manifest_with_unknown_fields(client: httpx.Client, registry: Registry, repo: str) -> None:
    manifest = image(layers=1, extra={"newUnspecifiedField": {"kept": [1, 2, 3]}})
    push_and_read(client, registry, repo, manifest)


def test_manifest_by_tag(
    client: httpx.Client, registry: Registry, repo: str, settings: Settings
) -> None:
    manifest = image(layers=1)
    registry.push_blobs(repo, manifest)
    tag = f"push-{settings.run_id}"
    response = registry.put_manifest(repo, tag, manifest)
    expect_status(response, 201, MANIFESTS)
    got = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": manifest.media_type})
    expect_status(got, 200, MANIFESTS)
    expect(got.content == manifest.body, MANIFESTS, "the tag does not serve the pushed bytes")


def test_manifest_digest_mismatch_is_400(registry: Registry, repo: str) -> None:
    manifest = image(layers=1)
    registry.push_blobs(repo, manifest)
    wrong = "sha256:" + "1" * 64
    response = registry.put_manifest(repo, wrong, manifest)
    expect_status(response, 400, MANIFESTS + " body digest differs from the reference")
    expect_error_code(response, ("DIGEST_INVALID", "MANIFEST_INVALID"), ERRORS)


def test_manifest_with_missing_blob(registry: Registry, repo: str, settings: Settings) -> None:
    manifest = image(layers=1)
    response = registry.put_manifest(repo, f"missing-{settings.run_id}", manifest)
    expect_status(response, (201, 400, 404), MANIFESTS)
    if response.status_code != 201:
        expect_error_code(response, ("MANIFEST_BLOB_UNKNOWN",), "Push (missing blobs)")


def test_invalid_manifest_is_400(client: httpx.Client, repo: str, settings: Settings) -> None:
    response = client.put(
        f"/v2/{repo}/manifests/broken-{settings.run_id}",
        content=b'{"schemaVersion": 2, "config": ',
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    expect_status(response, 400, MANIFESTS + " unparsable manifest")
    expect_error_code(response, ("MANIFEST_INVALID",), ERRORS)


def test_manifest_with_subject_answers_oci_subject(registry: Registry, repo: str) -> None:
    subject = image(layers=1)  # never pushed: a referrer may arrive before its subject
    referrer = image(layers=0, artifact_type="application/vnd.example.sbom", subject=subject)
    registry.push_blobs(repo, referrer)
    response = registry.put_manifest(repo, referrer.digest, referrer)
    expect_status(response, 201, SUBJECT)
    header = response.headers.get("OCI-Subject")
    expect(
        header == subject.digest,
        SUBJECT,
        f"OCI-Subject is {header!r}, expected {subject.digest}",
    )
