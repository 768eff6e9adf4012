"""``cve.attachSBOM``: each scanned image's SBOM pushed beside it as a referrer (an OCI
artifact whose ``subject`` is the image), so that ``oras discover`` and the referrers API
list it. The artifact goes through the registry's own push path (manifest checks, quotas,
observers, events), as if a client had pushed it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from ocireg.digests import parse_digest
from ocireg.errors import RegistryError
from ocireg.logs import event
from ocireg.registry.routes import Registries
from ocireg.registry.store import Registry
from ocireg.registry.uploads import ChunkInfo

log = logging.getLogger("ocireg.cve")

ARTIFACT_TYPE = "application/vnd.cyclonedx+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


@dataclass(frozen=True)
class Sbom:
    """An SBOM waiting to be attached to the image ``digest`` of ``repo``."""

    repo: str
    digest: str
    document: bytes


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _push_blob(registry: Registry, repo: str, data: bytes) -> None:
    digest = parse_digest("sha256:" + hashlib.sha256(data).hexdigest())
    if await registry.off_loop(registry.has_blob, repo, digest):
        return
    session = await registry.uploads.start(repo)
    try:
        await registry.uploads.complete(repo, session, digest, _once(data), ChunkInfo())
    except BaseException:
        await registry.uploads.discard(repo, session)
        raise


def manifest(subject: dict[str, object], document: bytes, created: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": _descriptor(EMPTY_TYPE, EMPTY),
            "layers": [_descriptor(ARTIFACT_TYPE, document)],
            "subject": subject,
            "annotations": {"org.opencontainers.image.created": created},
        },
        separators=(",", ":"),
    ).encode()


async def attach(registries: Registries, sbom: Sbom) -> str | None:
    """Push ``sbom`` as a referrer of its image; the artifact's digest, or None when the
    image is gone or the push is refused (logged: the scan stands)."""
    registry = registries.of(sbom.repo)
    try:
        stored = await registry.off_loop(registry.resolve, sbom.repo, sbom.digest)
        subject = {"mediaType": stored.media_type, "digest": stored.digest, "size": stored.size}
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        data = manifest(subject, sbom.document, created)
        await _push_blob(registry, sbom.repo, EMPTY)
        await _push_blob(registry, sbom.repo, sbom.document)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        await registry.put_manifest(sbom.repo, digest, data, OCI_MANIFEST, [])
    except RegistryError as error:
        event(log, logging.WARNING, "cve sbom not attached", repo=sbom.repo,
              digest=sbom.digest, error=error.code.name, detail=str(error.detail))  # fmt: skip
        return None
    event(log, logging.INFO, "cve sbom attached", repo=sbom.repo, digest=sbom.digest, sbom=digest)
    return digest
