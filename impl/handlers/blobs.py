"""Blob GET, HEAD and DELETE (end-2, end-10)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import BinaryIO

from starlette.responses import (
    FileResponse,
    MalformedRangeHeader,
    RangeNotSatisfiable,
    Response,
    StreamingResponse,
)

from ocireg.digests import parse_digest
from ocireg.errors import ErrorCode, RegistryError
from ocireg.handlers.base import registry, repo
from ocireg.operations import current_request
from ocireg.registry import layout

OCTET = "application/octet-stream"
CHUNK = 1 << 20  # 1 MiB reads: a third of the CPU per GiB of the 64 KiB default


class BlobFileResponse(FileResponse):
    chunk_size = CHUNK


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _check_range(response: BlobFileResponse, size: int) -> None:
    """Refuse a ``Range`` the way the spec says (an OCI error body), before starlette's
    FileResponse answers it in text/plain. Under an ``If-Range`` that does not match, starlette
    ignores the range (a full answer): so do we; under one that matches, the range applies."""
    headers = current_request().headers
    header = headers.get("range")
    if header is None:
        return
    if_range = headers.get("if-range")
    if if_range is not None and not response._should_use_range(if_range):
        return
    try:
        BlobFileResponse._parse_range_header(header, size)
    except MalformedRangeHeader as error:
        detail = {"range": header, "reason": error.content}
        raise RegistryError(ErrorCode.UNSUPPORTED, detail, status=400) from None
    except RangeNotSatisfiable:
        raise RegistryError(
            ErrorCode.UNSUPPORTED,
            {"range": header, "size": size},
            status=416,
            message="requested range not satisfiable",
            headers={"Content-Range": f"bytes */{size}"},
        ) from None


def _blob_response(name: str, digest: str) -> Response:
    """The answer to GET and HEAD alike: starlette's responses send only the headers to a HEAD,
    so both carry the same ones (Accept-Ranges, ETag and Last-Modified included), and a HEAD
    with a Range gets the 206 headers its GET would."""
    reg, dgst, name = registry(name), parse_digest(digest), repo(name)
    info = reg.blob_info(name, dgst)
    path = layout.blob_file(name, dgst)
    headers = {"Docker-Content-Digest": str(dgst)}
    local = reg.driver.local_path(path)
    if local is not None:  # sendfile-style streaming with Range support from starlette
        try:
            stat_result = os.stat(local)
        except (FileNotFoundError, NotADirectoryError):  # deleted since blob_info
            raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": str(dgst)}) from None
        response = BlobFileResponse(
            local, media_type=OCTET, headers=headers, stat_result=stat_result
        )
        _check_range(response, stat_result.st_size)
        return response
    headers["Content-Length"] = str(info.size)
    if current_request().method == "HEAD":
        return Response(status_code=200, media_type=OCTET, headers=headers)
    return StreamingResponse(_chunks(reg.driver.reader(path)), media_type=OCTET, headers=headers)


async def _blob_or_upstream(name: str, digest: str) -> Response:
    """The stored blob; on a miss, what an upstream (sync) streams while it is stored."""
    try:
        return _blob_response(name, digest)
    except RegistryError as error:
        reg = registry(name)
        if error.code is not ErrorCode.BLOB_UNKNOWN or reg.on_demand is None:
            raise
        source = await reg.on_demand.blob(reg, repo(name), parse_digest(digest))
        if source is None:
            raise
    if source.chunks is None:  # stored meanwhile: served as any stored blob
        return _blob_response(name, digest)
    headers = {"Docker-Content-Digest": digest, "Content-Length": str(source.size)}
    if current_request().method == "HEAD":
        await source.chunks.aclose()
        return Response(status_code=200, media_type=OCTET, headers=headers)
    return StreamingResponse(source.chunks, media_type=OCTET, headers=headers)


async def head_blob(name: str, digest: str) -> Response:
    return await _blob_or_upstream(name, digest)


async def get_blob(name: str, digest: str) -> Response:
    return await _blob_or_upstream(name, digest)


async def delete_blob(name: str, digest: str) -> Response:
    await registry(name).delete_blob(repo(name), parse_digest(digest))
    return Response(status_code=202)
