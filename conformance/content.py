"""Content the suite pushes: blobs, image configs, manifests, indexes and artifacts.

Everything is random per run, so a registry that already holds an earlier run's content still
sees new digests, and a referrer list is exactly what this run pushed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_JSON = "application/vnd.oci.empty.v1+json"


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str = "application/octet-stream"
    algorithm: str = "sha256"

    @property
    def digest(self) -> str:
        return f"{self.algorithm}:{hashlib.new(self.algorithm, self.data).hexdigest()}"

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def random_blob(size: int, media_type: str = OCI_LAYER, algorithm: str = "sha256") -> Blob:
    return Blob(secrets.token_bytes(size), media_type, algorithm)


def empty_config() -> Blob:
    return Blob(b"{}", EMPTY_JSON)


def image_config(**extra: Any) -> Blob:
    document = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "nonce": secrets.token_hex(8),  # a fresh config digest per image
        **extra,
    }
    return Blob(json.dumps(document).encode(), OCI_CONFIG)


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as bytes, with the blobs it needs pushed first."""

    body: bytes
    media_type: str
    blobs: tuple[Blob, ...] = field(default=())

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.body).hexdigest()

    @property
    def document(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.body),
            **extra,
        }


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2).encode()  # not canonical: bytes must be kept verbatim


def image(
    layers: int = 2,
    *,
    config: Blob | None = None,
    artifact_type: str | None = None,
    subject: Manifest | None = None,
    annotations: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Manifest:
    config = config or image_config()
    layer_blobs = [random_blob(64 + 32 * n) for n in range(layers)]
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [blob.descriptor() for blob in layer_blobs],
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    if subject:
        document["subject"] = subject.descriptor()
    if annotations:
        document["annotations"] = annotations
    document.update(extra or {})
    return Manifest(_encode(document), OCI_MANIFEST, (config, *layer_blobs))


def index(
    children: list[Manifest],
    *,
    subject: Manifest | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Manifest:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            child.descriptor(platform={"architecture": arch, "os": "linux"})
            for child, arch in zip(children, ["amd64", "arm64", "s390x", "ppc64le"], strict=False)
        ],
    }
    if subject:
        document["subject"] = subject.descriptor()
    if artifact_type:
        document["artifactType"] = artifact_type
    if annotations:
        document["annotations"] = annotations
    return Manifest(_encode(document), OCI_INDEX)
