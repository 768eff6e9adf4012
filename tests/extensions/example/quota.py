"""The example's code: imported only when ``extensions.quota`` is enabled."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.responses import Response

from ocireg import extensions
from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions import SetupContext
from ocireg.names import check_name
from ocireg.registry.manifests import Manifest
from ocireg.registry.store import Registry

from . import QuotaSettings


@dataclass(frozen=True)
class Quota:
    limit: int


def used_bytes(reg: Registry, name: str) -> int:
    """What the repository's blobs take, from its OCI layout's `blobs/<alg>/` directories."""
    total = 0
    for algorithm in reg.driver.list(f"{name}/blobs") if reg.driver.exists(f"{name}/blobs") else []:
        total += sum(reg.driver.stat(path).size for path in reg.driver.list(algorithm))
    return total


def setup(context: SetupContext) -> Quota:
    settings: QuotaSettings = context.settings
    quota = Quota(settings.limitBytes)

    async def within_quota(reg: Registry, name: str, _manifest: Manifest) -> None:
        used = await reg.off_loop(used_bytes, reg, name)  # storage work: off the loop on S3
        if used > quota.limit:
            raise RegistryError(
                ErrorCode.DENIED, {"reason": "over quota", "used": used, "limit": quota.limit}
            )

    context.check_manifests(within_quota)
    return quota


async def get_quota(name: str) -> Response:
    name = check_name(name)
    reg = extensions.registry(name)
    if await reg.off_loop(reg.index, name) is None:
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
    quota: Quota = extensions.state("quota")
    used = await reg.off_loop(used_bytes, reg, name)
    body = {"name": name, "usedBytes": used, "limitBytes": quota.limit}
    return Response(json.dumps(body), media_type="application/json")
