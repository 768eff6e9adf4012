"""Docker to OCI: a Docker v2s2 manifest or manifest list rewritten with OCI media types, as
zot does unless ``preserveDigest`` is set. Blobs are unchanged (the config's bytes too); only the
manifests change, and so their digests: an index's entries name the converted children.
The output is deterministic (same input, same bytes), so a recorded conversion stays valid."""

from __future__ import annotations

import json
from typing import Any

from ocireg.registry import mediatypes as mt

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYERS = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": (
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ),
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    ),
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
}


def to_oci(
    data: bytes, media_type: str, children: dict[str, dict[str, Any]]
) -> tuple[bytes, str] | None:
    """The OCI form of a manifest, None when it needs no change. ``children`` maps an index
    entry's digest to the descriptor fields (mediaType, digest, size) of its converted form."""
    if media_type not in mt.MANIFEST_TYPES:
        return None
    document = json.loads(data)
    if media_type in mt.INDEX_TYPES:
        entries = document.get("manifests") or []
        changed = media_type == mt.DOCKER_LIST
        for entry in entries:
            replacement = children.get(entry.get("digest", ""))
            if replacement is not None:
                entry.update(replacement)
                changed = True
        if not changed:
            return None
        document["mediaType"] = mt.OCI_INDEX
        return _dump(document), mt.OCI_INDEX
    if media_type != mt.DOCKER_MANIFEST:
        return None
    document["mediaType"] = mt.OCI_MANIFEST
    config = document.get("config") or {}
    if config.get("mediaType") == DOCKER_CONFIG:
        config["mediaType"] = OCI_CONFIG
    for layer in document.get("layers") or []:
        layer["mediaType"] = LAYERS.get(layer.get("mediaType"), layer.get("mediaType"))
    return _dump(document), mt.OCI_MANIFEST


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
