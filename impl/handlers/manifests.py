"""Manifest GET, HEAD, PUT and DELETE (end-3, end-7, end-9)."""

from __future__ import annotations

from starlette.responses import Response

from ocireg.digests import digest_bytes
from ocireg.errors import ErrorCode, RegistryError, malformed_reference
from ocireg.handlers.base import (
    app_state,
    body_stream,
    header_int,
    identity,
    query_list,
    registry,
    repo,
    require,
)
from ocireg.names import check_tag, is_tag
from ocireg.operations import current_request
from ocireg.registry.ondemand import ServedManifest
from ocireg.registry.store import Registry, StoredManifest


def _manifest_headers(digest: str, size: int) -> dict[str, str]:
    return {"Docker-Content-Digest": digest, "Content-Length": str(size), "ETag": f'"{digest}"'}


def _resolve_for_reading(reg: Registry, name: str, reference: str) -> StoredManifest:
    """The manifest a GET or HEAD asks for. A digest-shaped reference that is no valid digest
    (``sha256:totallywrong``) names nothing that can exist: 404, as for a malformed tag (see
    :mod:`ocireg.validation`), not the 400 that a write of it gets."""
    try:
        return reg.resolve(name, reference)
    except RegistryError as error:
        if error.code is not ErrorCode.DIGEST_INVALID:
            raise
        raise malformed_reference(error.detail.get("reason", "not a digest")) from None


async def _from_upstream(reg: Registry, name: str, reference: str) -> ServedManifest | None:
    """What an upstream (sync) serves instead of storage: asked for a tag, and for a digest
    this registry does not hold; a failing upstream is the on-demand side's to hide."""
    if reg.on_demand is None:
        return None
    if not is_tag(reference):
        try:
            await reg.off_loop(reg.resolve, name, reference)
            return None  # a digest held here is served from here
        except RegistryError as error:
            if error.code is not ErrorCode.MANIFEST_UNKNOWN:
                return None  # a malformed digest: the local path says why
    return await reg.on_demand.manifest(reg, name, reference)


def _stored(reg: Registry, name: str, reference: str, body: bool) -> tuple[StoredManifest, bytes]:
    """The manifest a GET (``body``) or HEAD asks for, with its content for a GET: one call,
    so that on S3 one worker thread asks for both (see ``Registry.off_loop``)."""
    stored = _resolve_for_reading(reg, name, reference)
    return stored, reg.manifest_bytes(name, stored) if body else b""


def _served_response(served: ServedManifest, head: bool) -> Response:
    headers = _manifest_headers(served.digest, len(served.data))
    if head:
        return Response(status_code=200, media_type=served.media_type, headers=headers)
    return Response(served.data, media_type=served.media_type, headers=headers)


async def head_manifest(name: str, reference: str) -> Response:
    reg, name = registry(name), repo(name)
    served = await _from_upstream(reg, name, reference)
    if served is not None:
        await reg.check_pull(name, served.digest)
        return _served_response(served, head=True)
    stored, _ = await reg.off_loop(_stored, reg, name, reference, False)
    await reg.check_pull(name, stored.digest)
    headers = _manifest_headers(stored.digest, stored.size)
    return Response(status_code=200, media_type=stored.media_type, headers=headers)


async def get_manifest(name: str, reference: str) -> Response:
    reg, name = registry(name), repo(name)
    served = await _from_upstream(reg, name, reference)
    if served is not None:
        await reg.check_pull(name, served.digest)
        reg.note_pull(name, served.digest)
        return _served_response(served, head=False)
    stored, data = await reg.off_loop(_stored, reg, name, reference, True)
    await reg.check_pull(name, stored.digest)
    reg.note_pull(name, stored.digest)
    headers = _manifest_headers(stored.digest, len(data))
    return Response(data, media_type=stored.media_type, headers=headers)


async def _read_manifest_body(limit: int) -> bytes:
    declared = header_int("content-length")
    too_large = RegistryError(
        ErrorCode.MANIFEST_INVALID,
        {"reason": f"manifest larger than {limit} bytes"},
        status=413,
        message="manifest too large",
    )
    if declared is not None and declared > limit:
        raise too_large
    body = bytearray()
    async for chunk in body_stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def put_manifest(name: str, reference: str) -> Response:
    name = repo(name)
    tags = [check_tag(t) for t in query_list("tag")]
    data = await _read_manifest_body(app_state().max_manifest_size)
    await _may_move(name, [reference, *tags] if is_tag(reference) else tags, data)
    content_type = current_request().headers.get("content-type")
    caller = identity()
    pusher = caller.user or ""
    # checked again under the lock: a tag someone creates meanwhile is not this caller's to move.
    # With this caller's identity, captured here: the check runs in a commit batch's task (or
    # thread), whose context is whichever push started the batch.
    guard = app_state().guard
    again = (lambda: guard.access.allows(caller, "update", name)) if guard is not None else None
    pushed = await registry(name).put_manifest(
        name, reference, data, content_type, tags, pusher, may_move_tags=again
    )
    headers = {
        "Location": f"/v2/{name}/manifests/{pushed.digest}",
        "Docker-Content-Digest": str(pushed.digest),
        "Content-Length": "0",
    }
    if pushed.subject:
        headers["OCI-Subject"] = pushed.subject
    response = Response(status_code=201, headers=headers)
    for tag in pushed.tags if tags else []:
        response.headers.append("OCI-Tag", tag)
    return response


async def _may_move(name: str, tags: list[str], data: bytes) -> None:
    """Pointing an existing tag at another manifest needs ``update``, not only ``create``
    (pushing the same manifest again moves nothing)."""
    reg = registry(name)
    index = await reg.off_loop(reg.index, name) if app_state().guard is not None else None
    if index is None:
        return
    digest = str(digest_bytes(data))
    if any(tag in index.tags and index.tags[tag]["digest"] != digest for tag in tags):
        await require("update", name)


async def delete_manifest(name: str, reference: str) -> Response:
    await registry(name).delete_manifest(repo(name), reference)
    return Response(status_code=202)
