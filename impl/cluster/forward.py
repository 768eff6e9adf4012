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
        "expect",  # 100-continue is between the client and the member it reached
        HOP_HEADER,
    }
)


def tls_context(https: bool, tls: ClusterTLS | None) -> ssl.SSLContext | None:
    """How members verify each other when they serve HTTPS: against ``cluster.tls.cacert``
    (else the system's CAs). ValueError naming the key when the file cannot be used."""
    if not https:
        return None
    try:
        context = ssl.create_default_context(cafile=tls.cacert if tls else None)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cluster.tls.cacert: cannot be used: {exc}") from None
    return context


def build_client(context: ssl.SSLContext | None) -> httpx.AsyncClient:
    """The client members use to reach each other (``context``: from :func:`tls_context`)."""
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=32)
    verify: ssl.SSLContext | bool = context if context is not None else False
    # Built here, not at import: ``ocireg serve`` defers httpx until a cluster needs it.
    timeout = httpx.Timeout(connect=5.0, read=300.0, write=300.0, pool=30.0)
    return httpx.AsyncClient(verify=verify, timeout=timeout, limits=limits)


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
    """The answer when a member cannot be reached: the OCI error shape, naming the member and
    what failed (refused, timed out, a certificate not verified...)."""
    refused = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    what = str(exc)[:200] or type(exc).__name__
    reason = f"cluster member {'cannot be reached' if refused else 'did not answer'}: {what}"
    detail = {"member": member, "reason": reason}
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
        await stream_back(response, base, send)
    finally:
        await response.aclose()


async def stream_back(response: httpx.Response, base: str, send: Send) -> None:
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
