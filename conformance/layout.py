"""Build a small multi-arch OCI image layout on disk, as a client-side fixture."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from ocireg.conformance.content import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST


def _write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layer(arch: str, salt: str) -> tuple[bytes, str]:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        content = f"hello from {arch}\n{salt}".encode()
        info = tarfile.TarInfo(f"etc/{arch}.txt")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def build_multiarch_layout(
    layout: Path, tag: str, arches: tuple[str, ...] = ("amd64", "arm64"), salt: str = ""
) -> str:
    """Write an OCI layout whose ``tag`` is an index of one image per architecture.
    Returns the index digest.

    The same arguments give the same digests. A ``salt`` goes into each layer, so a caller can
    have content that no client's cache (skopeo's blob-info cache, say) has seen before."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    children = []
    for arch in arches:
        layer, diff_id = _layer(arch, salt)
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "config": {"Env": ["ARCH=" + arch]},
            }
        ).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **_write_blob(layout, config)},
            "layers": [{"mediaType": OCI_LAYER, **_write_blob(layout, layer)}],
        }
        described = _write_blob(layout, json.dumps(manifest).encode())
        children.append(
            {
                "mediaType": OCI_MANIFEST,
                **described,
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    described = _write_blob(layout, json.dumps(index).encode())
    top = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_INDEX,
                **described,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(top))
    return str(described["digest"])
