"""lint: mandatory annotations on image manifest pushes, over HTTP."""

from __future__ import annotations

import json

import httpx

from tests.oci import (
    EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    canonical,
    descriptor,
    error_codes,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)

SOURCE = "org.opencontainers.image.source"


def test_missing_annotation_is_refused_with_the_keys_and_writes_nothing(
    ext_client: httpx.Client,
) -> None:
    repo = "lint/missing"
    document = image_manifest(ext_client, repo, annotations={"other": "x"})
    refused = put_manifest(ext_client, repo, "v1", document, expect=400)
    assert error_codes(refused) == ["MANIFEST_INVALID"]
    assert refused.json()["errors"][0]["detail"]["missingAnnotations"] == [SOURCE]
    assert ext_client.head(f"/v2/{repo}/manifests/v1").status_code == 404
    assert ext_client.get(f"/v2/{repo}/tags/list").json()["tags"] == []
    digest = sha256(canonical(document))
    assert ext_client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404


def test_annotation_in_the_manifest_or_a_config_label_passes(ext_client: httpx.Client) -> None:
    repo = "lint/present"
    annotated = image_manifest(ext_client, repo, annotations={SOURCE: "https://x"})
    put_manifest(ext_client, repo, "annotated", annotated)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {"Labels": {SOURCE: "y"}}}
    )
    labelled = image_manifest(ext_client, repo, config=config.encode())
    put_manifest(ext_client, repo, "labelled", labelled)


def test_indexes_and_signatures_are_not_linted(ext_client: httpx.Client) -> None:
    repo = "lint/exempt"
    image = image_manifest(ext_client, repo, annotations={SOURCE: "https://x"})
    pushed = put_manifest(ext_client, repo, "image", image)
    child = {
        "mediaType": OCI_MANIFEST,
        "digest": pushed.headers["Docker-Content-Digest"],
        "size": len(canonical(image)),
    }
    put_manifest(
        ext_client,
        repo,
        "index",
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]},
    )
    push_blob(ext_client, repo, b"{}")
    signature_blob = b"signature-envelope"
    push_blob(ext_client, repo, signature_blob)
    signature = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.cncf.notary.signature",
        "config": EMPTY,
        "layers": [descriptor("application/jose+json", signature_blob)],
        "subject": child,
    }
    put_manifest(ext_client, repo, "sha256-signature", signature)


def test_a_broken_config_blob_counts_as_no_labels(ext_client: httpx.Client) -> None:
    repo = "lint/broken-config"
    document = image_manifest(ext_client, repo, config=b"\xff not json")
    refused = put_manifest(ext_client, repo, "v1", document, expect=400)
    assert refused.json()["errors"][0]["detail"]["missingAnnotations"] == [SOURCE]
