"""Small client-side helpers to build and push OCI content in tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY = {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "size": 2,
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def push_blob(client: httpx.Client, repo: str, data: bytes, algorithm: str = "sha256") -> str:
    digest = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    response = client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return digest


def image_manifest(
    client: httpx.Client,
    repo: str,
    layers: list[bytes] | None = None,
    config: bytes | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Push the blobs an image manifest needs and return the manifest document."""
    config = config if config is not None else b'{"architecture":"amd64","os":"linux"}'
    push_blob(client, repo, config)
    layer_descriptors = []
    for layer in layers if layers is not None else [b"layer-" + repo.encode()]:
        push_blob(client, repo, layer)
        layer_descriptors.append(descriptor(OCI_LAYER, layer))
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layer_descriptors,
        **fields,
    }


def put_manifest(
    client: httpx.Client,
    repo: str,
    reference: str,
    document: dict[str, Any],
    media_type: str | None = None,
    expect: int = 201,
    **kwargs: Any,
) -> httpx.Response:
    body = canonical(document)
    media_type = media_type or document.get("mediaType", OCI_MANIFEST)
    response = client.put(
        f"/v2/{repo}/manifests/{reference}",
        content=body,
        headers={"Content-Type": media_type},
        **kwargs,
    )
    assert response.status_code == expect, response.text
    return response


def error_codes(response: httpx.Response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]
