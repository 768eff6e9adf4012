"""Which manifests are signatures: Notary Project (notation) and cosign."""

from __future__ import annotations

from ocireg.registry.manifests import Manifest

NOTATION = "application/vnd.cncf.notary.signature"
COSIGN_TYPES = frozenset(
    {
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    }
)
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"


def signature_kind(manifest: Manifest) -> str:
    """``"notation"``, ``"cosign"``, or ``""`` for a manifest that is not a signature."""
    kinds = {manifest.artifact_type, manifest.config.media_type if manifest.config else None}
    if NOTATION in kinds:
        return "notation"
    if kinds & COSIGN_TYPES or any(layer.media_type == COSIGN_LAYER for layer in manifest.layers):
        return "cosign"
    return ""
