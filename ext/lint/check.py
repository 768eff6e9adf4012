"""The manifest check: what zot's lint does, and the answer it gives.

Only OCI image manifests are linted (not indexes, not Docker manifests), and signatures are
exempt: a Notary or cosign signature is pushed by a signing tool that cannot add the image's
annotations. A key counts as present when the manifest's annotations or the image config's
labels have it.
"""

from __future__ import annotations

from typing import Any

from ocireg import jsonparse
from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.runtime import SetupContext
from ocireg.registry import mediatypes as mt
from ocireg.registry.manifests import Manifest
from ocireg.registry.signatures import signature_kind
from ocireg.registry.store import Registry

from . import LintSettings

CONFIG_LIMIT = 4 * 1024 * 1024


class LintRefusal(RegistryError):
    """Lint's refusal: a RegistryError like any other to the client; its own type tells the
    events extension that this push failed lint (zot's ``image.lint_failed``)."""


def is_signature(manifest: Manifest) -> bool:
    return signature_kind(manifest) != ""


def config_labels(registry: Registry, repo: str, manifest: Manifest) -> dict[str, Any]:
    if manifest.config is None:
        return {}
    data = registry.blob_bytes(repo, manifest.config.digest, CONFIG_LIMIT)
    try:
        document = jsonparse.loads(data) if data else None
    except jsonparse.JSONError:
        return {}
    config = document.get("config") if isinstance(document, dict) else None
    labels = config.get("Labels") if isinstance(config, dict) else None
    return labels if isinstance(labels, dict) else {}


def missing_annotations(
    registry: Registry, repo: str, manifest: Manifest, required: list[str]
) -> list[str]:
    present = manifest.annotations or {}
    missing = [key for key in required if key not in present]
    if missing:
        labels = config_labels(registry, repo, manifest)
        missing = [key for key in missing if key not in labels]
    return missing


def setup(context: SetupContext) -> None:
    settings: LintSettings = context.settings
    required = list(dict.fromkeys(settings.mandatoryAnnotations))
    if not required:
        return

    async def lint(registry: Registry, repo: str, manifest: Manifest) -> None:
        if manifest.media_type != mt.OCI_MANIFEST or is_signature(manifest):
            return
        # (the config's labels may be read from storage: on S3, off the loop)
        missing = await registry.off_loop(missing_annotations, registry, repo, manifest, required)
        if missing:
            raise LintRefusal(
                ErrorCode.MANIFEST_INVALID,
                {"reason": "mandatory annotations are missing", "missingAnnotations": missing},
            )

    context.check_manifests(lint)
