"""Asking every member the same question at once (the catalog, search), with the caller's
headers, each marked as proxied so that the member answers from its own storage."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.types import Scope

from ocireg.cluster.forward import forwarded_headers, unreachable
from ocireg.errors import ErrorCode, RegistryError

# A fan-out sends its own body: the caller's framing headers do not describe it.
_BODY_HEADERS = frozenset({b"content-length", b"content-type", b"content-encoding"})


def without_body_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k not in _BODY_HEADERS]


@dataclass(frozen=True)
class Answer:
    member: str
    response: httpx.Response

    def document(self) -> Any:
        """The answer's JSON; RegistryError (502) naming the member when it is not JSON."""
        try:
            return self.response.json()
        except ValueError:
            detail = {"member": self.member, "reason": "cluster member answered no JSON"}
            raise RegistryError(
                ErrorCode.UNAVAILABLE, detail, status=502, message="bad gateway"
            ) from None


async def ask_all(
    client: httpx.AsyncClient,
    bases: dict[str, str],
    scope: Scope,
    path: str,
    *,
    params: dict[str, str] | None = None,
    json: object = None,
) -> list[Answer]:
    """Each member's answer to GET ``path?params`` (POST ``json`` when given), in member
    order; RegistryError (503/502) naming the first member that could not be reached."""
    headers = without_body_headers(forwarded_headers(scope))

    async def one(member: str, base: str) -> Answer:
        url = base + path
        try:
            if json is None:
                response = await client.get(url, params=params, headers=headers)
            else:
                response = await client.post(url, json=json, headers=headers)
        except httpx.TransportError as exc:
            raise unreachable(member, exc) from None
        return Answer(member, response)

    tasks = [asyncio.ensure_future(one(m, b)) for m, b in bases.items()]
    try:
        return list(await asyncio.gather(*tasks))
    except RegistryError:
        for task in tasks:
            task.cancel()
        raise
