"""Requests between members: one HTTP client per process, and the streaming proxy.

A proxied request carries zot's header ``X-Zot-Cluster-Hop-Count: 1``; a member answers such a
request itself (or refuses it when it is not the owner), so a request is never proxied twice.
Bodies stream both ways in chunks, never held whole: a blob of any size passes through in
constant memory. Headers go as they came (``Authorization`` included, so the owner
authenticates the caller itself), minus those that describe one connection.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
from starlette.types import Message, Receive, Scope, Send

from ocireg.cluster.settings import ClusterTLS
from ocireg.errors import ErrorCode, RegistryError, error_response

log = logging.getLogger("ocireg.cluster")

HOP_HEADER = "x-zot-cluster-hop-count"
# RFC 9110 7.6.1: what belongs to one connection, plus Host (the member's own is sent).
_PER_CONNECTION = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        HOP_HEADER,
    }
)
_TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=300.0, pool=30.0)


def build_client(https: bool, tls: ClusterTLS | None) -> httpx.AsyncClient:
    """The client members use to reach each other: HTTPS when they serve it, verified against
    ``cluster.tls.cacert`` (else the system's CAs), with ``cluster.tls.cert`` shown when given."""
    verify: ssl.SSLContext | bool = False
    if https:
        context = ssl.create_default_context(cafile=tls.cacert if tls else None)
        if tls and tls.cert and tls.key:
            context.load_cert_chain(tls.cert, tls.key)
        verify = context
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=32)
    return httpx.AsyncClient(verify=verify, timeout=_TIMEOUT, limits=limits)


def member_url(https: bool, member: str) -> str:
    return f"{'https' if https else 'http'}://{member}"


def forwarded_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1") not in _PER_CONNECTION]
    return [*headers, (HOP_HEADER.encode(), b"1")]


def target(scope: Scope, base: str) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("raw_path") or scope["path"].encode()
    return f"{base}{path.decode('latin-1')}" + (f"?{query}" if query else "")


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise httpx.ReadError("the client went away")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def unreachable(member: str, exc: Exception) -> RegistryError:
    """The answer when a member cannot be reached: the OCI error shape, naming the member."""
    refused = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    reason = "cannot connect" if refused else f"no answer ({type(exc).__name__})"
    detail = {"member": member, "reason": f"cluster member {reason}"}
    if refused:
        return RegistryError(ErrorCode.UNAVAILABLE, detail, message="cluster member unavailable")
    return RegistryError(ErrorCode.UNAVAILABLE, detail, status=502, message="bad gateway")


def _response_headers(response: httpx.Response, base: str) -> list[tuple[bytes, bytes]]:
    kept = []
    for name, value in response.headers.raw:
        lower = name.decode("latin-1").lower()
        if lower in _PER_CONNECTION:
            continue
        if lower == "location":
            value = _relative_to(value.decode("latin-1"), base).encode("latin-1")
        kept.append((name.lower(), value))
    return kept


def _relative_to(location: str, base: str) -> str:
    """A Location on the owner itself, made relative, so that the client keeps talking to the
    member it reached (ours are relative already; a redirect elsewhere, e.g. to S3, stays)."""
    parts, own = urlsplit(location), urlsplit(base)
    if parts.scheme == own.scheme and parts.netloc == own.netloc:
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return location


async def proxy(
    client: httpx.AsyncClient, base: str, member: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """Forward the request to ``member`` at ``base`` and stream its answer back."""
    request = client.build_request(
        scope["method"],
        target(scope, base),
        headers=forwarded_headers(scope),
        content=_body(receive) if _has_body(scope) else None,
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        log.warning("cluster member %s: %s", member, exc)
        await error_response(unreachable(member, exc))(scope, receive, send)
        return
    try:
        await _stream_back(response, base, send)
    finally:
        await response.aclose()


async def _stream_back(response: httpx.Response, base: str, send: Send) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": response.status_code,
        "headers": _response_headers(response, base),
    }
    await send(start)
    try:
        async for chunk in response.aiter_raw(64 * 1024):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx.TransportError as exc:
        # Too late for an error response: the status is sent. Ending here makes the server
        # close the connection, so the client sees a short body, never a whole wrong one.
        log.warning("cluster member stopped answering mid-body: %s", exc)
        raise
    await send({"type": "http.response.body", "body": b"", "more_body": False})
