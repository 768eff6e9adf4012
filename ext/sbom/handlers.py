"""``GET /v2/{name}/_ocireg/sbom?reference=``: the inventory of one image manifest, as CycloneDX.

The layers are streamed from storage in a worker thread (a full Debian image takes well under
a second); nothing is kept, so the answer always matches what storage holds.
"""

from __future__ import annotations

import asyncio

from starlette.responses import Response

from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.runtime import SetupContext
from ocireg.handlers.base import query, registry, repo
from ocireg.handlers.manifests import _resolve_for_reading
from ocireg.registry.store import Registry

from ..cve.inventory import InventoryError, inventory
from ..cve.inventory.sbom import cyclonedx_json
from ..cve.inventory.source import image_layers

MEDIA_TYPE = "application/vnd.cyclonedx+json"


def setup(_context: SetupContext) -> None:
    return None


def _document(reg: Registry, name: str, digest: str, media_type: str) -> str:
    manifest = reg.load_manifest(name, digest, media_type)
    if manifest is None:
        raise RegistryError(ErrorCode.MANIFEST_UNKNOWN, {"name": name, "reference": digest})
    try:
        layers = image_layers(reg, name, manifest)
        found = inventory(layers)
    except InventoryError as error:
        # an index, an artifact, or layers storage cannot give: no file system to list
        raise RegistryError(ErrorCode.UNSUPPORTED, {"reason": str(error)}, status=400) from None
    return cyclonedx_json(found, f"{name}@{digest}")


async def get_sbom(name: str) -> Response:
    reg, name = registry(name), repo(name)
    reference = query("reference") or ""  # required and a tag or digest: the spec checked
    stored = await reg.off_loop(_resolve_for_reading, reg, name, reference)
    body = await asyncio.to_thread(_document, reg, name, stored.digest, stored.media_type)
    headers = {"Docker-Content-Digest": stored.digest}
    return Response(body.encode(), media_type=MEDIA_TYPE, headers=headers)
