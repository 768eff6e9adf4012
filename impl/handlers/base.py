"""Helpers every handler shares, and the version check and health probes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from itertools import islice
from urllib.parse import quote

from starlette.datastructures import QueryParams
from starlette.responses import PlainTextResponse, Response

from ocireg.auth.identity import Identity, identity_of
from ocireg.digests import Digest
from ocireg.names import check_name
from ocireg.operations import current_request
from ocireg.registry.offloop import run_database_work
from ocireg.registry.routes import Registries
from ocireg.registry.store import Registry
from ocireg.state import AppState, state_of

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}


def app_state() -> AppState:
    return state_of(current_request().scope)


def registry(name: str) -> Registry:
    """The registry of the storage root holding repository ``name`` (``storage.subPaths``)."""
    return app_state().registries.of(name)


def registries() -> Registries:
    return app_state().registries


def identity() -> Identity:
    return identity_of(current_request().scope)


async def require(action: str, name: str) -> None:
    """Raise the 401 or 403 the caller gets unless it may do ``action`` on ``name`` (for
    what the operation's x-ocireg-access rule cannot know, such as overwriting a tag)."""
    guard = app_state().guard
    if guard is not None:
        await guard.require(identity(), action, name)


def may(action: str, name: str) -> bool:
    guard = app_state().guard
    return guard is None or guard.access.allows(identity(), action, name)


def readable(names: Iterable[str], limit: int | None = None) -> list[str]:
    """Those of ``names`` the caller may read (the first ``limit`` of them): all of them when
    nothing is configured, which then costs no policy lookup per repository (a catalog or a
    search goes through them all)."""
    guard = app_state().guard
    if guard is None:
        return list(islice(names, limit))
    return list(islice(guard.access.readable(identity(), names), limit))


def client_key() -> str:
    """Who a per-client limit counts against: an address, and the user when there is one (a
    robot account that many machines share gets a share on each, an anonymous one none)."""
    client = current_request().scope.get("client")
    address = client[0] if client else ""
    user = identity().user
    return address if user is None else f"{user}@{address}"


CATALOG_BATCH = 1000  # names read from the meta DB at a time while filtering them


async def readable_catalog(
    after: str | None, wanted: int | None, keep: Callable[[str], bool] | None = None
) -> list[str]:
    """Repository names after ``after``, in order, that the caller may read (and ``keep``
    keeps), at most ``wanted``: from the meta DB's catalog in batches read on the database's
    threads, never a walk of storage."""
    db = app_state().meta
    found: list[str] = []
    while wanted is None or len(found) < wanted:
        batch = await run_database_work(True, db.catalog, after, CATALOG_BATCH)
        names = batch if keep is None else [name for name in batch if keep(name)]
        found += readable(names, None if wanted is None else wanted - len(found))
        if len(batch) < CATALOG_BATCH:
            break
        after = batch[-1]
    return found


def repo(name: str) -> str:
    """The repository name, validated beyond what the spec's pattern can say."""
    return check_name(name)


def body_stream() -> AsyncIterator[bytes]:
    return current_request().stream()


def header_int(name: str) -> int | None:
    value = current_request().headers.get(name)
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _query_params() -> QueryParams:
    # the raw query string (already validated against the spec), with repeated keys, which
    # `?tag=` and `?artifactType=` use
    return current_request().query_params


def query(name: str) -> str | None:
    return _query_params().get(name)


def query_list(name: str) -> list[str]:
    return _query_params().getlist(name)


def query_int(name: str) -> int | None:
    value = query(name)
    return None if value is None else int(value)


def blob_location(name: str, dgst: Digest | str) -> str:
    return f"/v2/{name}/blobs/{dgst}"


def next_link(path: str, n: int, last: str) -> str:
    return f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'


async def api_version() -> Response:
    return Response(b"{}", media_type="application/json", headers=API_VERSION_HEADER)


async def livez() -> Response:
    return PlainTextResponse("ok")


async def readyz() -> Response:
    state = app_state()
    if not state.ready:
        return PlainTextResponse("not ready", status_code=503)
    try:
        for root in state.registries.roots():
            root.driver.stat("")
    except OSError:
        return PlainTextResponse("storage unreachable", status_code=503)
    return PlainTextResponse("ok")


async def startupz() -> Response:
    return PlainTextResponse("ok")
