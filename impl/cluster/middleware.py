"""The cluster's ASGI layer, outermost (before authentication: the member that answers
authenticates and authorizes the caller itself, from the headers passed on to it).

Per request: a request already proxied (zot's hop header) is answered here, or refused when
this member does not own its repository (the members' files disagree; zot exits there);
``/v2/_catalog`` and GraphQL search fan out (unless the storage is shared: then every member
sees every repository); a request on a repository another member owns is
proxied to that member; everything else is answered here.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

import httpx
from graphql import GraphQLError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocireg.cluster import catalog
from ocireg.cluster.fanout import ask_all
from ocireg.cluster.forward import HOP_HEADER, build_client, member_url, proxy, tls_context
from ocireg.cluster.members import Cluster
from ocireg.cluster.mount import mount_across, mount_source
from ocireg.cluster.search import Merger, Plan
from ocireg.cluster.settings import ClusterTLS
from ocireg.errors import ErrorCode, RegistryError, error_response

log = logging.getLogger("ocireg.cluster")

# The repository-scoped routes of the core spec and of extensions (``/v2/<name>/...``).
_SCOPED = re.compile(
    r"^/v2/(?P<name>.+?)/(?:manifests/[^/]+|blobs/uploads/[^/]*|blobs/[^/]+|tags/list"
    r"|referrers/[^/]+|_oci/ext/discover|_ocireg/sbom)$"
)
_SEARCH = "/v2/_zot/ext/search"
_USERPREFS = "/v2/_zot/ext/userprefs"
_MAX_QUERY = 64 * 1024  # what the search endpoint itself accepts; past it, it answers 413


def repository(scope: Scope) -> str | None:
    """The repository a request is about, if any."""
    path: str = scope["path"]
    if (match := _SCOPED.match(path)) is not None:
        return match.group("name")
    if path == _USERPREFS:  # a star or bookmark is kept where its repository lives
        return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))).get("repo")
    return None


def _replay(body: bytes, then: Receive | None = None) -> Receive:
    """A receive that gives ``body`` first, then what ``then`` gives (the rest of a body read
    only in part), or the end of the request."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then() if then is not None else {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": then is not None}

    return receive


async def _read(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body up to just past ``limit`` bytes, and whether that is all of it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


class ClusterMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        cluster: Cluster,
        https: bool,
        tls: ClusterTLS | None,
        *,
        search: bool,
        shared: bool,
    ) -> None:
        """``search``: the search extension runs; ``shared``: every member's storage holds
        every repository (s3), so any member's catalog and search see them all, as in zot."""
        self.app, self.cluster, self.shared = app, cluster, shared
        self.fan_out_catalog, self.fan_out_search = not shared, search and not shared
        self.tls = tls_context(https, tls)  # here: a file that cannot be used fails start-up
        self.bases = {m: member_url(https, m) for m in cluster.members}
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        # Made on first use, in the worker's event loop.
        if self._client is None:
            self._client = build_client(self.tls)
        return self._client

    def owner(self, name: str) -> int:
        return self.cluster.owner(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = repository(scope)
        if any(k == HOP_HEADER.encode() for k, _ in scope["headers"]):
            await self._proxied(name, scope, receive, send)
        elif scope["path"] == "/v2/_catalog" and self.fan_out_catalog and scope["method"] == "GET":
            await catalog.fan_out(self.client, self.bases, scope, receive, send)
        elif (
            scope["path"] == _SEARCH and self.fan_out_search and scope["method"] in ("GET", "POST")
        ):
            await self._search(scope, receive, send)
        elif (
            name is not None
            and not self.shared  # on shared storage the owner has every blob already
            and (mount := mount_source(scope)) is not None
            and (self.owner(mount[1]) != self.owner(name))
        ):
            await self._mount(name, mount, scope, receive, send)
        elif name is not None and (owner := self.owner(name)) != self.cluster.me:
            member = self.cluster.members[owner]
            await proxy(self.client, self.bases[member], member, scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _mount(
        self, name: str, mount: tuple[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        digest, origin = mount
        source = self.cluster.members[self.owner(origin)]
        target = self.cluster.members[self.owner(name)]
        ends = (source, self.bases[source]), (target, self.bases[target])
        await mount_across(self.client, *ends, name, digest, scope, receive, send)

    async def _proxied(self, name: str | None, scope: Scope, receive: Receive, send: Send) -> None:
        if name is None or self.owner(name) == self.cluster.me:
            await self.app(scope, receive, send)
            return
        log.error("a proxied request for %s reached a member that does not own it", name)
        refusal = RegistryError(
            ErrorCode.UNAVAILABLE,
            {
                "repository": name,
                "reason": "cluster members disagree on who owns it: "
                "check that every member has the same cluster.members and cluster.hashKey",
            },
            status=508,
            message="cluster routing loop",
        )
        await error_response(refusal)(scope, receive, send)

    async def _search(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw, whole = (b"", True) if scope["method"] == "GET" else await _read(receive, _MAX_QUERY)
        if not whole:  # too large: this member's search refuses it, after authentication
            await self.app(scope, _replay(raw, receive), send)
            return
        body = _graphql_request(scope, raw)
        local_receive = _replay(raw)
        try:
            plan = Plan(body) if body is not None else None
        except (GraphQLError, ValueError, TypeError, KeyError):
            plan = None  # not ours to judge: this member's search answers with its error
        if plan is None:
            await self.app(scope, local_receive, send)
            return
        answering = plan.answered_by(self.owner, self.cluster.me)
        if answering == self.cluster.me:
            await self.app(scope, local_receive, send)
        elif answering is not None:
            member = self.cluster.members[answering]
            await proxy(self.client, self.bases[member], member, scope, local_receive, send)
        else:
            await self._fan_out_search(plan, scope, receive, send)

    async def _fan_out_search(self, plan: Plan, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            answers = await ask_all(self.client, self.bases, scope, _SEARCH, json=plan.widened())
        except RegistryError as exc:
            await error_response(exc)(scope, receive, send)
            return
        refused = next((a for a in answers if a.response.status_code != 200), None)
        if refused is not None:
            await catalog.passed_on(refused.response)(scope, receive, send)
            return
        try:
            documents = [a.document() for a in answers]
        except RegistryError as exc:
            await error_response(exc)(scope, receive, send)
            return
        try:
            merged = Merger(plan, documents, self.owner, self.cluster.me).merged()
        except (AttributeError, KeyError, TypeError, IndexError):
            # a member answered in a shape no member of this version gives
            detail = {"reason": "cluster members' search answers could not be merged"}
            refusal = RegistryError(
                ErrorCode.UNAVAILABLE, detail, status=502, message="bad gateway"
            )
            await error_response(refusal)(scope, receive, send)
            return
        body = json.dumps(merged, separators=(",", ":")).encode()
        await Response(body, media_type="application/json")(scope, receive, send)


def _graphql_request(scope: Scope, raw: bytes) -> dict[str, Any] | None:
    """``{query, variables, operationName}`` from a GET's parameters or a POST's JSON body."""
    if scope["method"] == "GET":
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "query" not in params:
            return None
        try:
            variables = json.loads(params["variables"]) if params.get("variables") else None
        except ValueError:
            return None
        return {
            "query": params["query"],
            "variables": variables,
            "operationName": params.get("operationName"),
        }
    try:
        document = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("query"), str):
        return None
    return document
