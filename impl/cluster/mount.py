"""A cross-repository mount between repositories of different members.

``POST /v2/<to>/blobs/uploads/?mount=<digest>&from=<from>`` is answered by ``<to>``'s owner,
whose storage lacks the blob when ``<from>`` lives on another member. Then the blob is copied:
streamed from ``<from>``'s owner into a monolithic upload at ``<to>``'s owner, both with the
caller's credentials (so the caller must be able to read the one and write the other, as for a
mount), and the client gets the owner's 201. When the source cannot be read (absent, or not
the caller's to read), the request goes to ``<to>``'s owner as it came, which answers as the
spec says: 202 and an upload session.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

import httpx
from starlette.types import Receive, Scope, Send

from ocireg.cluster.fanout import without_body_headers
from ocireg.cluster.forward import forwarded_headers, proxy, stream_back, unreachable
from ocireg.errors import error_response


def mount_source(scope: Scope) -> tuple[str, str] | None:
    """``(digest, from)`` of a mount request, else None."""
    if scope["method"] != "POST" or not scope["path"].endswith("/blobs/uploads/"):
        return None
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    digest, source = query.get("mount"), query.get("from")
    return (digest, source) if digest and source else None


async def mount_across(
    client: httpx.AsyncClient,
    source: tuple[str, str],
    target: tuple[str, str],
    name: str,
    digest: str,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """``source``/``target``: (member, base URL) of the owners of ``from`` and ``name``."""
    (from_member, from_base), (to_member, to_base) = source, target
    origin = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))["from"]
    headers = without_body_headers(forwarded_headers(scope))
    try:
        blob = await client.send(
            client.build_request("GET", f"{from_base}/v2/{origin}/blobs/{digest}", headers=headers),
            stream=True,
        )
    except httpx.TransportError:
        blob = None  # the source's owner is away: a mount that cannot happen, not an error
    if blob is None or blob.status_code != 200:
        if blob is not None:
            await blob.aclose()
        await proxy(client, to_base, to_member, scope, receive, send)
        return
    try:
        size = blob.headers.get("content-length")
        length = [(b"content-length", size.encode())] if size else []
        upload = client.build_request(
            "POST",
            f"{to_base}/v2/{name}/blobs/uploads/?digest={quote(digest, safe='')}",
            headers=[*headers, (b"content-type", b"application/octet-stream"), *length],
            content=blob.aiter_raw(64 * 1024),
        )
        try:
            answer = await client.send(upload, stream=True)
        except httpx.TransportError as exc:
            member = to_member if not isinstance(exc, httpx.ReadError) else from_member
            await error_response(unreachable(member, exc))(scope, receive, send)
            return
    finally:
        await blob.aclose()
    try:
        await stream_back(answer, to_base, send)
    finally:
        await answer.aclose()
