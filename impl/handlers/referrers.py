"""Referrers API (end-12a, end-12b): manifests whose subject is a digest, as an image index."""

from __future__ import annotations

from starlette.responses import Response

from ocireg.digests import parse_digest
from ocireg.handlers.base import query_list, registry, repo
from ocireg.registry.mediatypes import OCI_INDEX
from ocireg.registry.store import manifest_json


async def list_referrers(name: str, digest: str) -> Response:
    subject = parse_digest(digest)
    artifact_types = query_list("artifactType")
    reg = registry(name)
    if reg.on_demand is not None:
        await reg.on_demand.referrers(reg, repo(name), subject)
    found = await reg.off_loop(reg.referrers, repo(name), subject, artifact_types)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_types else None
    return Response(manifest_json(found), media_type=OCI_INDEX, headers=headers)
