"""Tags list and catalog, sorted, with n/last pagination and Link (end-8a, end-8b)."""

from __future__ import annotations

import bisect
import json

from starlette.responses import Response

from ocireg.errors import ErrorCode, RegistryError
from ocireg.handlers.base import (
    next_link,
    query,
    query_int,
    readable,
    registries,
    registry,
    repo,
)


def _page(items: list[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """Entries after ``last`` (exclusive, lexical), at most ``n``; and whether more remain."""
    start = bisect.bisect_right(items, last) if last is not None else 0
    if n is None:
        return items[start:], False
    page = items[start : start + n]
    return page, n > 0 and start + n < len(items)


def _json(document: dict[str, object], link: str | None) -> Response:
    headers = {"Link": link} if link else None
    body = json.dumps(document, separators=(",", ":")).encode()
    return Response(body, media_type="application/json", headers=headers)


async def list_tags(name: str) -> Response:
    name = repo(name)
    index = registry(name).index(name)
    if index is None:
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
    n = query_int("n")
    tags, more = _page(index.sorted_tags(), n, query("last"))
    link = next_link(f"/v2/{name}/tags/list", n, tags[-1]) if more and n else None
    return _json({"name": name, "tags": tags}, link)


async def catalog() -> Response:
    n = query_int("n")
    repositories, more = _page(readable(registries().repositories()), n, query("last"))
    link = next_link("/v2/_catalog", n, repositories[-1]) if more and n else None
    return _json({"repositories": repositories}, link)
