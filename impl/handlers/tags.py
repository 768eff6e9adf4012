"""Tags list and catalog, sorted, with n/last pagination and Link (end-8a, end-8b)."""

from __future__ import annotations

import bisect
import json

from starlette.responses import Response

from ocireg.errors import ErrorCode, RegistryError
from ocireg.handlers.base import (
    app_state,
    next_link,
    query,
    query_int,
    readable,
    readable_catalog,
    registries,
    registry,
    repo,
)
from ocireg.registry.offloop import run_storage_work


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
    reg = registry(name)
    index = await reg.off_loop(reg.index, name)
    if index is None:
        raise RegistryError(ErrorCode.NAME_UNKNOWN, {"name": name})
    n = query_int("n")
    tags, more = _page(index.sorted_tags(), n, query("last"))
    link = next_link(f"/v2/{name}/tags/list", n, tags[-1]) if more and n else None
    return _json({"name": name, "tags": tags}, link)


async def catalog() -> Response:
    n = query_int("n")
    repositories, more = await _catalog_page(n, query("last"))
    link = next_link("/v2/_catalog", n, repositories[-1]) if more and n else None
    return _json({"repositories": repositories}, link)


async def _catalog_page(n: int | None, last: str | None) -> tuple[list[str], bool]:
    """A page of the catalog, from the meta DB's index of repositories (never a walk of
    storage on the request path), keeping only what the caller may read; and whether more
    remain. Until the first sync has built that index (a new meta DB), storage is walked in a
    thread."""
    meta = app_state().meta
    if not await meta.asked(meta.catalog_built):  # a flag once built: no hop on SQLite
        every = await run_storage_work(True, registries().repositories)
        return _page(readable(every), n, last)
    found = await readable_catalog(last, None if n is None else n + 1)  # +1: a next page?
    if n is None:
        return found, False
    return found[:n], n > 0 and len(found) > n
