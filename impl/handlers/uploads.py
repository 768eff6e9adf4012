"""Blob uploads: start, monolithic, mount, chunk, status, complete, cancel.

Spec endpoints end-4a/4b, end-5, end-6, end-11, end-13 and the main branch's cancel.
"""

from __future__ import annotations

from starlette.responses import Response

from ocireg.auth.guard import token_scope
from ocireg.digests import Digest, parse_digest, require_supported
from ocireg.errors import RegistryError
from ocireg.handlers.base import (
    app_state,
    blob_location,
    body_stream,
    client_key,
    header_int,
    identity,
    may,
    query,
    readable_catalog,
    registry,
    repo,
)
from ocireg.names import check_name
from ocireg.operations import current_request
from ocireg.registry.store import Registry
from ocireg.registry.uploads import ChunkInfo, range_header


def _session_location(name: str, session: str) -> str:
    return f"/v2/{name}/blobs/uploads/{session}"


def _accepted(name: str, session: str, size: int, status: int = 202) -> Response:
    headers = {
        "Location": _session_location(name, session),
        "Range": range_header(size),
        "Docker-Upload-UUID": session,
    }
    if status == 202:
        headers["Content-Length"] = "0"
    return Response(status_code=status, headers=headers)


def _created(name: str, digest: str) -> Response:
    headers = {"Location": blob_location(name, digest), "Docker-Content-Digest": digest}
    return Response(status_code=201, headers=headers)


def _chunk_info() -> ChunkInfo:
    return ChunkInfo(current_request().headers.get("content-range"), header_int("content-length"))


async def _ask_for_the_source(name: str, source: str) -> None:
    """A registry token that does not cover the mount's source gets a challenge naming both
    repositories, so the client fetches one that does (as distribution asks); anyone else
    falls back to a plain upload, as if the blob were not there."""
    who, guard = identity(), app_state().guard
    if guard is not None and who.grant is not None:
        scopes = [token_scope(name, "create"), token_scope(source, "read")]
        raise await guard.refusal(who, scopes)


async def start_upload(name: str) -> Response:
    reg, name = registry(name), repo(name)
    mount = query("mount")
    if mount is not None:
        dgst = parse_digest(mount)
        if await _mounted(reg, name, dgst, query("from")):
            return _created(name, str(dgst))
    monolithic = query("digest")
    # checked before a session exists, so a bad digest leaves nothing behind
    expected = require_supported(parse_digest(monolithic)) if monolithic is not None else None
    # refused (429) before anything is written: past maxRepos, past a session cap
    await reg.check_room(name)
    session = await reg.uploads.start(name, client_key())
    try:
        if expected is not None:
            await reg.uploads.complete(name, session, expected, body_stream(), _chunk_info())
        await reg.ensure_repository(name)
    except BaseException:
        # a refused push leaves neither a session nor an empty repository behind
        await reg.uploads.discard(name, session)
        raise
    if expected is None:
        return _accepted(name, session, 0)
    return _created(name, str(expected))


async def _mounted(reg: Registry, name: str, dgst: Digest, source: str | None) -> bool:
    """Whether the blob was mounted into ``name``: from ``source``, or without one from any
    repository holding it (unless ``storage.automaticMount`` is off), and only from what the
    caller may read; otherwise the request goes on as a plain upload (202). Only a repository
    in the same storage root can lend a blob (``storage.subPaths``)."""
    if source is None:
        if not app_state().config.storage.automaticMount:
            return False
        return await reg.mount_blob(name, dgst, await _mount_candidates(reg, name, dgst))
    check_name(source)
    if may("read", source):
        return await reg.mount_blob(name, dgst, [source] if registry(source) is reg else [])
    await _ask_for_the_source(name, source)
    return False


# Repositories a mount without from= looks in, each costing one stat; past them it uploads.
MOUNT_CANDIDATES = 1000


async def _mount_candidates(reg: Registry, name: str, dgst: Digest) -> list[str]:
    """The readable repositories of ``reg``'s root that a mount without ``from`` may take the
    blob from: names from the meta DB's catalog, never a walk of storage, and none at all when
    the dedupe store says that no repository holds the blob."""
    if not await reg.off_loop(reg.may_hold_anywhere, dgst):
        return []
    return await readable_catalog(
        None, MOUNT_CANDIDATES, keep=lambda other: other != name and registry(other) is reg
    )


async def upload_status(name: str, session_id: str) -> Response:
    name = repo(name)
    size = await registry(name).uploads.size(name, session_id)
    return _accepted(name, session_id, size, status=204)


async def patch_upload(name: str, session_id: str) -> Response:
    name = repo(name)
    try:
        size = await registry(name).uploads.append(name, session_id, body_stream(), _chunk_info())
    except RegistryError as error:
        if error.http_status == 416:
            error.headers["Location"] = _session_location(name, session_id)
        raise
    return _accepted(name, session_id, size)


async def complete_upload(name: str, session_id: str) -> Response:
    name = repo(name)
    dgst = parse_digest(query("digest") or "")  # required by the spec: validated as present
    uploads = registry(name).uploads
    await uploads.size(name, session_id)  # 404 for an unknown session before anything else
    try:
        await uploads.complete(name, session_id, dgst, body_stream(), _chunk_info())
    except RegistryError as error:
        if error.http_status == 416:
            error.headers["Location"] = _session_location(name, session_id)
        raise
    return _created(name, str(dgst))


async def cancel_upload(name: str, session_id: str) -> Response:
    await registry(name).uploads.cancel(repo(name), session_id)
    return Response(status_code=204)
