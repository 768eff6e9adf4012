"""Which manifests are signatures: Notary Project (notation) and cosign.

Besides signatures that name their image as ``subject``, cosign's older form tags the signature
``sha256-<hex>.sig`` beside the image ``sha256:<hex>`` it signs; zot counts those as signatures
of that image (and lists them as nothing else).
"""

from __future__ import annotations

import re

from ocireg.registry.manifests import Manifest

NOTATION = "application/vnd.cncf.notary.signature"
COSIGN_TYPES = frozenset(
    {
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    }
)
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
_COSIGN_TAG = re.compile(r"sha256-([0-9a-f]{64})\.sig")


def signature_kind(manifest: Manifest) -> str:
    """``"notation"``, ``"cosign"``, or ``""`` for a manifest that is not a signature."""
    kinds = {manifest.artifact_type, manifest.config.media_type if manifest.config else None}
    if NOTATION in kinds:
        return "notation"
    if kinds & COSIGN_TYPES or any(layer.media_type == COSIGN_LAYER for layer in manifest.layers):
        return "cosign"
    return ""


def cosign_tag_subject(tag: str) -> str | None:
    """The digest a legacy cosign signature tag (``sha256-<hex>.sig``) signs, else None."""
    found = _COSIGN_TAG.fullmatch(tag)
    return f"sha256:{found.group(1)}" if found else None


def cosign_tag(digest: str) -> str | None:
    """The tag cosign gives the signature of the manifest ``digest`` (sha256 only)."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}-{encoded}.sig" if algorithm == "sha256" and encoded else None
