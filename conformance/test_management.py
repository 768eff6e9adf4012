"""Content management: deleting tags, manifests and blobs (spec §Content Management)."""

from __future__ import annotations

import httpx
import pytest

from ocireg.conformance.checks import expect, expect_error_code, expect_status
from ocireg.conformance.content import image
from ocireg.conformance.ops import Registry
from ocireg.conformance.settings import Settings

pytestmark = pytest.mark.workflow("management")

TAGS = "Deleting tags (end-9)"
MANIFESTS = "Deleting Manifests (end-9)"
BLOBS = "Deleting Blobs (end-10)"


def test_delete_tag(
    client: httpx.Client, registry: Registry, repo: str, settings: Settings
) -> None:
    manifest = image(layers=1)
    tag, kept = f"del-{settings.run_id}", f"keep-{settings.run_id}"
    registry.push_manifest(repo, tag, manifest)
    registry.push_manifest(repo, kept, manifest)
    response = client.delete(f"/v2/{repo}/manifests/{tag}")
    expect_status(response, (202, 400, 405), TAGS)
    if response.status_code == 400:  # deleting tags is disabled: the code must say so
        expect_error_code(response, ("UNSUPPORTED",), TAGS)
        pytest.skip("the registry does not delete tags (400 UNSUPPORTED)")
    if response.status_code == 405:
        pytest.skip("the registry does not delete tags (405)")
    expect_status(client.get(f"/v2/{repo}/manifests/{tag}"), 404, TAGS + ": the tag is gone")
    tags = client.get(f"/v2/{repo}/tags/list").json().get("tags") or []
    expect(tag not in tags, TAGS, f"the deleted tag is still listed: {tags}")
    still = client.get(f"/v2/{repo}/manifests/{manifest.digest}")
    expect_status(still, 200, TAGS + ": the manifest outlives its tag")
    expect_status(client.get(f"/v2/{repo}/manifests/{kept}"), 200, TAGS + ": other tags stay")


def test_delete_manifest(
    client: httpx.Client, registry: Registry, repo: str, settings: Settings
) -> None:
    manifest = image(layers=1)
    tags = [f"gone-{settings.run_id}-1", f"gone-{settings.run_id}-2"]
    for tag in tags:
        registry.push_manifest(repo, tag, manifest)
    response = client.delete(f"/v2/{repo}/manifests/{manifest.digest}")
    expect_status(response, (202, 400, 405), MANIFESTS)
    if response.status_code != 202:
        pytest.skip(f"the registry does not delete manifests ({response.status_code})")
    expect_status(client.get(f"/v2/{repo}/manifests/{manifest.digest}"), 404, MANIFESTS)
    for tag in tags:
        expect_status(
            client.get(f"/v2/{repo}/manifests/{tag}"), 404, MANIFESTS + ": its tags are gone too"
        )


def test_delete_unknown_manifest_is_404(client: httpx.Client, repo: str) -> None:
    unknown = image(layers=1)
    response = client.delete(f"/v2/{repo}/manifests/{unknown.digest}")
    expect_status(response, (404, 400, 405), MANIFESTS)
    if response.status_code == 404:
        expect_error_code(response, ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"), MANIFESTS)


def test_delete_blob(client: httpx.Client, registry: Registry, repo: str) -> None:
    manifest = image(layers=1)
    registry.push_manifest(repo, manifest.digest, manifest)
    delete = client.delete(f"/v2/{repo}/manifests/{manifest.digest}")
    expect_status(delete, (202, 400, 405), MANIFESTS)
    layer = manifest.blobs[1]
    response = client.delete(f"/v2/{repo}/blobs/{layer.digest}")
    expect_status(response, (202, 400, 405), BLOBS)
    if response.status_code != 202:
        pytest.skip(f"the registry does not delete blobs ({response.status_code})")
    expect_status(client.get(f"/v2/{repo}/blobs/{layer.digest}"), 404, BLOBS + ": the blob is gone")
    expect_status(client.head(f"/v2/{repo}/blobs/{layer.digest}"), 404, BLOBS)


def test_delete_unknown_blob_is_404(client: httpx.Client, repo: str) -> None:
    response = client.delete(f"/v2/{repo}/blobs/sha256:{'2' * 64}")
    expect_status(response, (404, 405), BLOBS)
    if response.status_code == 404:
        expect_error_code(response, ("BLOB_UNKNOWN",), BLOBS)
