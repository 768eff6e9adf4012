"""Blob GET, HEAD and DELETE (end-2, end-10)."""

from __future__ import annotations

import os
import weakref

from starlette.datastructures import MutableHeaders
from starlette.responses import (
    FileResponse,
    MalformedRangeHeader,
    RangeNotSatisfiable,
    Response,
    StreamingResponse,
)
from starlette.types import Receive, Scope, Send

from ocireg.digests import parse_digest
from ocireg.errors import ErrorCode, RegistryError
from ocireg.handlers.base import registry, repo
from ocireg.operations import current_request
from ocireg.readahead import read_ahead
from ocireg.relay import SocketRelay
from ocireg.storage.driver import PathNotFoundError, StorageDriver
from ocireg.storage.socketbody import SocketBody
from ocireg.zerocopy import EXTENSION, offered

OCTET = "application/octet-stream"
CHUNK = 1 << 20  # 1 MiB reads: a third of the CPU per GiB of the 64 KiB default
# A blob this large or larger, on storage that offers its body in a socket (S3 over plain
# HTTP), is relayed to a client that takes zero-copy sends: a connection and a thread of its
# own cost more than they save on small blobs, which take the pooled path.
RELAY_LEAST = 1 << 20


class BlobFileResponse(FileResponse):
    """starlette's file response; where the connection offers zero-copy sends (plain TCP,
    ``ocireg.zerocopy``), a whole blob or one range goes from the file to the socket by
    ``sendfile``, not through Python. Several ranges (multipart) are sent as starlette does."""

    chunk_size = CHUNK
    _zero_copy = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._zero_copy = scope["type"] == "http" and offered(scope)
        await super().__call__(scope, receive, send)

    async def _handle_simple(self, send: Send, send_header_only: bool, send_pathsend: bool) -> None:
        if not self._zero_copy or send_header_only:
            await super()._handle_simple(send, send_header_only, send_pathsend)
            return
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        await self._send_file(send, 0, int(self.headers["content-length"]))

    async def _handle_single_range(
        self, send: Send, start: int, end: int, file_size: int, send_header_only: bool
    ) -> None:
        if not self._zero_copy or send_header_only:
            await super()._handle_single_range(send, start, end, file_size, send_header_only)
            return
        headers = MutableHeaders(raw=list(self.raw_headers))
        headers["content-range"] = f"bytes {start}-{end - 1}/{file_size}"
        headers["content-length"] = str(end - start)
        await send({"type": "http.response.start", "status": 206, "headers": headers.raw})
        await self._send_file(send, start, end - start)

    async def _send_file(self, send: Send, offset: int, count: int) -> None:
        # a local file's open does not wait on anything worth a thread hop
        file = os.open(self.path, os.O_RDONLY)
        try:
            message = {"file": file, "offset": offset, "count": count, "more_body": False}
            await send({"type": EXTENSION, **message})
        finally:
            os.close(file)


class RelayedResponse(Response):
    """A body still in the storage's socket (an S3 answer on plain HTTP), copied by a thread
    of its own into the socket of a client that offers zero-copy sends (``ocireg.relay``,
    ``ocireg.zerocopy``). The relay ends with the response, however it ends (the client gone,
    a timeout, an error), and closes the S3 connection."""

    def __init__(self, body: SocketBody, status_code: int, headers: dict[str, str]) -> None:
        super().__init__(status_code=status_code, media_type=OCTET, headers=headers)
        relay = SocketRelay(body)
        self._relay = relay
        # a response never called still frees its S3 connection (when collected)
        self._stop = weakref.finalize(self, relay.stop)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            message = {"relay": self._relay, "count": self._relay.length, "more_body": False}
            await send({"type": EXTENSION, **message})
        finally:
            self._stop()


def _requested_range(size: int, etag: str) -> tuple[int, int] | None:
    """The one byte range ``[start, end)`` a GET asks for, checked as :func:`_check_range`
    does; None for the whole blob (no Range, an ``If-Range`` that does not match, or several
    ranges, which a server may answer whole)."""
    headers = current_request().headers
    header = headers.get("range")
    if header is None or headers.get("if-range", etag) != etag:
        return None
    ranges = _parsed_ranges(header, size)
    return ranges[0] if len(ranges) == 1 else None


def _parsed_ranges(header: str, size: int) -> list[tuple[int, int]]:
    """The byte ranges of a ``Range`` header, or the spec's error for one that is malformed
    (400) or not satisfiable (416), as an OCI error body."""
    try:
        return BlobFileResponse._parse_range_header(header, size)
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
    _parsed_ranges(header, size)


def _blob_response(name: str, digest: str) -> Response:
    """The answer to GET and HEAD alike: starlette's responses send only the headers to a HEAD,
    so both carry the same ones (Accept-Ranges, ETag and Last-Modified included), and a HEAD
    with a Range gets the 206 headers its GET would."""
    reg, dgst, name = registry(name), parse_digest(digest), repo(name)
    path, info = reg.blob_location(name, dgst)  # on s3, a placeholder's content
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
    method = current_request().method
    redirect = reg.driver.redirect_url(path, method) if method == "GET" else None
    if redirect is not None:  # storage.redirectBlobURL on an s3 root: a presigned URL
        return Response(status_code=307, headers={**headers, "Location": redirect})
    return _streamed(reg.driver, path, info.size, headers, method)


def _streamed(
    driver: StorageDriver, path: str, size: int, headers: dict[str, str], method: str
) -> Response:
    """A blob read through its driver (no local file), whole or one requested range."""
    etag = f'"{headers["Docker-Content-Digest"]}"'  # content-addressed: a strong validator
    headers |= {"Accept-Ranges": "bytes", "ETag": etag, "Content-Length": str(size)}
    wanted = _requested_range(size, etag)
    status, start, length = 200, 0, size
    if wanted is not None:
        start, end = wanted
        status, length = 206, end - start
        headers |= {
            "Content-Range": f"bytes {start}-{end - 1}/{size}",
            "Content-Length": str(length),
        }
    if method == "HEAD":
        return Response(status_code=status, media_type=OCTET, headers=headers)
    if length >= RELAY_LEAST and offered(current_request().scope):
        in_socket = driver.socket_body(path, start, length)
        if in_socket is not None:
            return RelayedResponse(in_socket, status, headers)
    try:
        reader = driver.reader(path, start)
    except PathNotFoundError:  # deleted since it was found (by GC, or another instance)
        digest = headers["Docker-Content-Digest"]
        raise RegistryError(ErrorCode.BLOB_UNKNOWN, {"digest": digest}) from None
    body = read_ahead(reader, length)  # one thread, pieces bounded
    return StreamingResponse(body, status_code=status, media_type=OCTET, headers=headers)


async def _located(name: str, digest: str) -> Response:
    """:func:`_blob_response`, on a worker thread where finding and opening a blob are network
    requests (S3: a HEAD, then a GetObject's connect and answer head): an S3 that stalls
    holds up that request only, never the event loop, nor other work's threads."""
    return await registry(name).off_loop(_blob_response, name, digest)


async def _blob_or_upstream(name: str, digest: str) -> Response:
    """The stored blob; on a miss, what an upstream (sync) streams while it is stored."""
    try:
        return await _located(name, digest)
    except RegistryError as error:
        reg = registry(name)
        if error.code is not ErrorCode.BLOB_UNKNOWN or reg.on_demand is None:
            raise
        source = await reg.on_demand.blob(reg, repo(name), parse_digest(digest))
        if source is None:
            raise
    if source.chunks is None:  # stored meanwhile: served as any stored blob
        return await _located(name, digest)
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
