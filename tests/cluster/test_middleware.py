"""What the cluster layer does with each request, against a stand-in for the registry."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import httpx
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from ocireg.cluster.members import Cluster
from tests.cluster.members3 import HASH_KEY, owned_by

with warnings.catch_warnings():
    # connexion's imports (through the handlers) use deprecated jsonschema names
    warnings.simplefilter("ignore")
    from ocireg.cluster.middleware import ClusterMiddleware, repository

# Addresses that answer nothing: a request sent to another member fails with 503.
MEMBERS = ("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")


async def _here(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("answered here")(scope, receive, send)


class _Client:
    """Requests to a cluster layer in front of ``_here`` (a new layer per request: its HTTP
    client belongs to the event loop it was first used in)."""

    def __init__(self, shared: bool) -> None:
        self.shared = shared

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        cluster = Cluster(MEMBERS, HASH_KEY, me=0)
        app = ClusterMiddleware(_here, cluster, False, None, search=True, shared=self.shared)

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://m0") as client:
                return await client.request(method, url, **options)

        return asyncio.run(call())

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)


def _client(*, shared: bool) -> _Client:
    return _Client(shared)


def test_the_repository_of_each_route() -> None:
    def of(path: str, query: bytes = b"") -> str | None:
        return repository({"path": path, "query_string": query})

    assert of("/v2/a/b/manifests/v1") == "a/b"
    assert of("/v2/a/blobs/uploads/") == "a"
    assert of("/v2/a/blobs/uploads/123") == "a"
    assert of("/v2/a/b/c/blobs/sha256:00") == "a/b/c"
    assert of("/v2/a/tags/list") == "a"
    assert of("/v2/a/referrers/sha256:00") == "a"
    assert of("/v2/a/_oci/ext/discover") == "a"
    assert of("/v2/_catalog") is None
    assert of("/v2/_zot/ext/search") is None
    assert of("/v2/_zot/ext/userprefs", b"action=toggleStar&repo=x/y") == "x/y"


def test_own_repositories_and_everything_else_are_answered_here() -> None:
    client = _client(shared=False)
    assert client.get(f"/v2/{owned_by(0, 'mine-')}/tags/list").text == "answered here"
    assert client.get("/v2/").text == "answered here"
    assert client.get("/metrics").text == "answered here"


def test_another_members_repository_is_proxied_and_its_absence_said() -> None:
    answer = _client(shared=False).get(f"/v2/{owned_by(2, 'theirs-')}/tags/list")
    assert answer.status_code == 503
    assert answer.json()["errors"][0]["detail"]["member"] == MEMBERS[2]


def test_on_shared_storage_the_catalog_and_search_are_answered_here() -> None:
    shared, own = _client(shared=True), _client(shared=False)
    assert shared.get("/v2/_catalog").text == "answered here"
    assert own.get("/v2/_catalog").status_code == 503  # fanned out to members that are down
    search = {"query": "{ RepoListWithNewestImage { Results { Name } } }"}
    assert shared.post("/v2/_zot/ext/search", json=search).text == "answered here"
    assert own.post("/v2/_zot/ext/search", json=search).status_code == 503


def test_a_query_that_is_not_graphql_is_answered_by_this_members_search() -> None:
    client = _client(shared=False)
    assert client.post("/v2/_zot/ext/search", content=b"{nope").text == "answered here"
    assert client.get("/v2/_zot/ext/search").text == "answered here"
    large = {"query": "{ __typename }" + " " * 70_000}
    assert client.post("/v2/_zot/ext/search", json=large).text == "answered here"
