"""A lean HTTP/1.1 client for webhook deliveries without a proxy: kept-alive connections over
asyncio streams, one POST at a time on each.

httpx costs 1-3 CPU-ms a request (its models, auth flow, connection pool and anyio streams),
about all of a delivery's CPU; this costs a fraction. What a delivery needs is small: a POST
with a known body and headers, a status line to check, a response body to skip (read and
dropped ``CHUNK`` at a time, never kept; one longer than ``MAX_BODY`` ends its connection
instead, as a receiver that sends that much is not worth the reading). A sink with
a ``proxy`` keeps httpx (see :mod:`.sinks`).

A kept-alive connection the receiver closed meanwhile fails on its next request before any
answer, on its write (reset, broken pipe) or its read: that request is sent once more on a new
connection (the event's id is the same, so a receiver that did get it drops the duplicate).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .headers import check_headers

MAX_HEAD = 64 * 1024  # a response's status line and headers
MAX_BODY = 1024 * 1024  # a longer response body closes its connection rather than be read
CHUNK = 64 * 1024  # a response body is read and dropped this much at a time


def default_tls() -> ssl.SSLContext:
    """What httpx verified against with no ``tls`` configured: certifi's bundle where certifi
    is installed (so HTTPS sinks that worked through httpx keep working), else the system's."""
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


class ResponseError(Exception):
    """The receiver's answer cannot be read as HTTP/1.1."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        self.writer.close()


class Webhook:
    """POSTs to one URL over kept-alive connections (as many as requests run at once)."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        tls: ssl.SSLContext | None,
        basic: tuple[str, str] | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.tls = (tls or default_tls()) if self.https else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        fixed = {"Host": parts.netloc.rsplit("@", 1)[-1], **headers}
        if basic is None and parts.username is not None:  # as httpx: the URL's user info
            basic = (unquote(parts.username), unquote(parts.password or ""))
        if basic is not None:
            pair = f"{basic[0]}:{basic[1]}".encode()
            fixed["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        check_headers(fixed)  # ValueError: a field that would break the request
        self._start = f"POST {target} HTTP/1.1\r\n"
        self._fixed = fixed
        self._idle: list[_Connection] = []

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body``; the answer's status (its body read and dropped)."""
        head = self._head(body, headers)
        while self._idle:  # a kept-alive one; the receiver may have closed it meanwhile
            connection = self._idle.pop()
            try:
                return await self._exchange(connection, head, body, reused=True)
            except _Stale:
                continue
        return await self._exchange(await self._connect(), head, body, reused=False)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
            with contextlib.suppress(OSError):  # closed: how it ended does not matter
                await connection.writer.wait_closed()

    def _head(self, body: bytes, headers: dict[str, str]) -> bytes:
        check_headers(headers)  # the event's attributes: ValueError rather than a split field
        merged = {**self._fixed, **headers, "Content-Length": str(len(body))}
        lines = "".join(f"{name}: {value}\r\n" for name, value in merged.items())
        return (self._start + lines + "\r\n").encode("latin-1")

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(
            self.host,
            self.port,
            ssl=self.tls,
            server_hostname=self.host if self.tls else None,
            limit=MAX_HEAD,
        )
        return _Connection(reader, writer)

    async def _exchange(
        self, connection: _Connection, head: bytes, body: bytes, reused: bool
    ) -> int:
        try:
            await _write(connection.writer, head + body, reused)
            status, keep = await _read_response(connection.reader, reused)
        except BaseException:
            connection.close()
            raise
        if keep:
            self._idle.append(connection)
        else:
            connection.close()
        return status


class _Stale(Exception):
    """A kept-alive connection was closed by the receiver before it answered."""


async def _write(writer: asyncio.StreamWriter, data: bytes, reused: bool) -> None:
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionError:  # reset, broken pipe, aborted: closed by the receiver meanwhile
        if reused:
            raise _Stale from None
        raise


async def _read_response(reader: asyncio.StreamReader, reused: bool) -> tuple[int, bool]:
    """(status, whether the connection may be used again) of the next final response."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if reused and not exc.partial:
                raise _Stale from None
            raise ResponseError("the connection closed before an answer") from None
        except ConnectionResetError:
            if reused:
                raise _Stale from None
            raise
        except asyncio.LimitOverrunError:
            raise ResponseError("an answer's headers are too long") from None
        status, version, fields = _parse_head(head)
        if 100 <= status < 200:
            continue  # an interim answer: the final one follows
        keep = await _skip_body(reader, status, fields)
        closing = fields.get("connection", "").lower()
        if version == "HTTP/1.0":
            keep = keep and closing == "keep-alive"
        return status, keep and closing != "close"


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    try:
        version, code = lines[0].split(" ", 2)[:2]
        status = int(code)
    except ValueError:
        raise ResponseError(f"not an HTTP status line: {lines[0][:100]!r}") from None
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            fields[name.strip().lower()] = value.strip()
    return status, version, fields


async def _skip_body(reader: asyncio.StreamReader, status: int, fields: dict[str, str]) -> bool:
    """Read the answer's body and drop it; whether the connection may be used again (false
    when the body runs to the connection's end or is longer than ``MAX_BODY``)."""
    if status in (204, 304):
        return True
    if "chunked" in fields.get("transfer-encoding", "").lower():
        return await _skip_chunks(reader)
    length = fields.get("content-length")
    if length is None:
        await _drop(reader, MAX_BODY, to_end=True)
        return False
    size = int(length)
    if size < 0:
        raise ResponseError(f"a negative Content-Length: {length!r}")
    if size > MAX_BODY:
        return False
    await _drop(reader, size)
    return True


async def _skip_chunks(reader: asyncio.StreamReader) -> bool:
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0], 16)
        if size < 0:
            raise ResponseError(f"a negative chunk size: {line[:100]!r}")
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers
            return True
        total += size
        if total > MAX_BODY:
            return False
        await _drop(reader, size + 2)  # the chunk and its CRLF


async def _drop(reader: asyncio.StreamReader, size: int, to_end: bool = False) -> None:
    """Read ``size`` bytes (``to_end``: at most that many, up to the connection's end) and
    drop them, ``CHUNK`` at a time."""
    while size > 0:
        data = await reader.read(min(size, CHUNK))
        if not data:
            if to_end:
                return
            raise ResponseError("the connection closed inside an answer's body")
        size -= len(data)
