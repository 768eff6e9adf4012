"""Pull: the workflow every conforming registry must support (spec §Pull)."""

from __future__ import annotations

import httpx
import pytest

from ocireg.conformance.checks import (
    describe,
    expect,
    expect_error_code,
    expect_header,
    expect_status,
)
from ocireg.conformance.content import Manifest, image
from ocireg.conformance.ops import Registry
from ocireg.conformance.settings import Settings

pytestmark = pytest.mark.workflow("pull")

MANIFESTS = "Pulling manifests (end-3)"
BLOBS = "Pulling blobs (end-2)"
EXISTS = "Checking if content exists in the registry (end-2, end-3)"
SUPPORT = "Determining support (end-1)"
ERRORS = "Error Codes"


@pytest.fixture(scope="module")
def pushed(registry: Registry, repo: str, settings: Settings) -> tuple[Manifest, str]:
    manifest = image(layers=2)
    tag = f"pull-{settings.run_id}"
    registry.push_manifest(repo, tag, manifest)
    return manifest, tag


def test_api_version_check(client: httpx.Client) -> None:
    response = client.get("/v2/")
    expect_status(response, 200, SUPPORT)


def test_get_manifest_by_tag(client: httpx.Client, repo: str, pushed: tuple[Manifest, str]) -> None:
    manifest, tag = pushed
    response = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": manifest.media_type})
    expect_status(response, 200, MANIFESTS)
    expect(response.content == manifest.body, MANIFESTS, "the body is not the exact bytes pushed")
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    expect(
        content_type == manifest.media_type,
        MANIFESTS,
        f"Content-Type is {content_type!r}, the manifest was pushed as {manifest.media_type}",
    )
    digest = response.headers.get("Docker-Content-Digest")
    expect(
        digest in (None, manifest.digest),
        MANIFESTS,
        f"Docker-Content-Digest {digest} does not match the content ({manifest.digest})",
    )


def test_get_manifest_by_digest(
    client: httpx.Client, repo: str, pushed: tuple[Manifest, str]
) -> None:
    manifest, _ = pushed
    response = client.get(
        f"/v2/{repo}/manifests/{manifest.digest}", headers={"Accept": manifest.media_type}
    )
    expect_status(response, 200, MANIFESTS)
    expect(response.content == manifest.body, MANIFESTS, "the body is not the exact bytes pushed")


def test_head_manifest(client: httpx.Client, repo: str, pushed: tuple[Manifest, str]) -> None:
    manifest, tag = pushed
    for reference in (tag, manifest.digest):
        response = client.head(
            f"/v2/{repo}/manifests/{reference}", headers={"Accept": manifest.media_type}
        )
        expect_status(response, 200, EXISTS)
        length = response.headers.get("Content-Length")
        expect(
            length in (None, str(len(manifest.body))),
            EXISTS,
            f"HEAD Content-Length {length} is not the manifest's size {len(manifest.body)}",
        )
        digest = response.headers.get("Docker-Content-Digest")
        expect(digest in (None, manifest.digest), EXISTS, f"HEAD Docker-Content-Digest {digest}")


def test_missing_manifest_is_404(client: httpx.Client, repo: str, settings: Settings) -> None:
    response = client.get(f"/v2/{repo}/manifests/missing-{settings.run_id}")
    expect_status(response, 404, MANIFESTS)
    expect_error_code(response, ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"), ERRORS)
    response = client.head(f"/v2/{repo}/manifests/missing-{settings.run_id}")
    expect_status(response, 404, EXISTS)


def test_manifest_in_missing_repository_is_404(client: httpx.Client, settings: Settings) -> None:
    response = client.get(f"/v2/no-such-repo-{settings.run_id}/manifests/latest")
    expect_status(response, 404, MANIFESTS)
    expect_error_code(response, ("NAME_UNKNOWN", "MANIFEST_UNKNOWN"), ERRORS)


def test_malformed_reference_is_404(client: httpx.Client, repo: str) -> None:
    """A reference that is neither a tag nor a digest names no manifest: the spec's answer to
    a manifest that is not found is 404, and the official OCI conformance suite asks 404 for
    GET and HEAD of exactly this name (a 400 such as ``TAG_INVALID`` fails it)."""
    reference = ".INVALID_MANIFEST_NAME"
    response = client.get(f"/v2/{repo}/manifests/{reference}")
    expect_status(response, 404, MANIFESTS + " a malformed reference")
    expect_error_code(response, ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"), ERRORS)
    response = client.head(f"/v2/{repo}/manifests/{reference}")
    expect_status(response, 404, EXISTS + " a malformed reference")


def test_malformed_manifest_digest_is_400_or_404(client: httpx.Client, repo: str) -> None:
    response = client.get(f"/v2/{repo}/manifests/sha256:totallywrong")
    expect_status(response, (400, 404), MANIFESTS)
    expect_error_code(response, ("DIGEST_INVALID", "MANIFEST_UNKNOWN", "MANIFEST_INVALID"), ERRORS)


def test_get_blob(client: httpx.Client, repo: str, pushed: tuple[Manifest, str]) -> None:
    manifest, _ = pushed
    for blob in manifest.blobs:
        response = client.get(f"/v2/{repo}/blobs/{blob.digest}")
        expect_status(response, 200, BLOBS)
        expect(response.content == blob.data, BLOBS, f"{describe(response)} with other bytes")
        digest = response.headers.get("Docker-Content-Digest")
        expect(digest in (None, blob.digest), BLOBS, f"Docker-Content-Digest {digest} is wrong")


def test_head_blob(client: httpx.Client, repo: str, pushed: tuple[Manifest, str]) -> None:
    manifest, _ = pushed
    blob = manifest.blobs[1]
    response = client.head(f"/v2/{repo}/blobs/{blob.digest}")
    expect_status(response, 200, EXISTS)
    length = expect_header(response, "Content-Length", EXISTS)
    expect(length == str(blob.size), EXISTS, f"Content-Length {length}, the blob has {blob.size}")


def test_blob_range_request(client: httpx.Client, repo: str, pushed: tuple[Manifest, str]) -> None:
    blob = pushed[0].blobs[1]
    response = client.get(f"/v2/{repo}/blobs/{blob.digest}", headers={"Range": "bytes=10-19"})
    expect_status(response, 206, BLOBS + " range requests")
    expect(response.content == blob.data[10:20], BLOBS, "the 206 body is not bytes 10-19")
    content_range = expect_header(response, "Content-Range", BLOBS)
    expected = f"bytes 10-19/{blob.size}"
    expect(content_range == expected, BLOBS, f"Content-Range {content_range!r}, not {expected!r}")


def test_missing_blob_is_404(client: httpx.Client, repo: str) -> None:
    missing = "sha256:" + "0" * 64
    response = client.get(f"/v2/{repo}/blobs/{missing}")
    expect_status(response, 404, BLOBS)
    expect_error_code(response, ("BLOB_UNKNOWN",), ERRORS)
    expect_status(client.head(f"/v2/{repo}/blobs/{missing}"), 404, EXISTS)
