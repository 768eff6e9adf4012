"""search under hostile input: query limits, bodies, deep JSON, and queries off the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from ocireg.config import Config
from ocireg.meta.db import SQLiteMetaDB
from ocireg.storage.memory import MemoryDriver
from tests.liveserver import LiveServer, live_server
from tests.oci import OCI_MANIFEST, image_manifest, put_manifest

SEARCH = "/v2/_zot/ext/search"
REPO = "zui/app"

# zot's web UI (zui src/api.js), as it sends them: the landing page, the repository page, the
# image page, the explore page with every filter on, the search box and the image's tabs
ZUI_QUERIES = {
    "landing": (
        "{RepoListWithNewestImage(requestedPage: {limit:15 offset:0}){Results {Name "
        "LastUpdated Size Platforms {Os Arch}  NewestImage { Tag Vulnerabilities {MaxSeverity "
        "Count} Description  Licenses Title Source IsSigned SignatureInfo { Tool IsTrusted "
        "Author } Documentation Vendor Labels} IsStarred IsBookmarked StarCount DownloadCount}}}"
    ),
    "repository page": (
        f'{{ExpandedRepoInfo(repo:"{REPO}"){{Images {{Manifests {{Digest Platform {{Os Arch}} '
        "Size} Vulnerabilities {MaxSeverity Count} Tag LastUpdated Vendor IsDeletable } Summary "
        "{Name LastUpdated Size Platforms {Os Arch} Vendors IsStarred IsBookmarked NewestImage "
        "{RepoName IsSigned SignatureInfo { Tool IsTrusted Author } Vulnerabilities "
        "{MaxSeverity Count} Manifests {Digest} Tag Vendor Title Documentation DownloadCount "
        "Source Description Licenses}}}}"
    ),
    "image page": (
        f'{{Image(image: "{REPO}:v1"){{RepoName IsSigned SignatureInfo {{ Tool IsTrusted '
        "Author } Vulnerabilities {MaxSeverity Count}  Referrers {MediaType ArtifactType Size "
        "Digest Annotations{Key Value}} Tag Manifests {History {Layer {Size Digest} "
        "HistoryDescription {CreatedBy EmptyLayer}} Digest ConfigDigest LastUpdated Size "
        "Platform {Os Arch}} Vendor Licenses }}"
    ),
    "explore": (
        '{GlobalSearch(query:"zui", requestedPage: {limit:15 offset:0 sortBy: RELEVANCE} '
        ',filter: { Os:["linux"] Arch:["amd64"]}) {Page {TotalCount ItemCount} Repos {Name '
        "LastUpdated Size Platforms { Os Arch } IsStarred IsBookmarked NewestImage { Tag "
        "Vulnerabilities {MaxSeverity Count} Description IsSigned SignatureInfo { Tool "
        "IsTrusted Author } Licenses Vendor Labels } StarCount DownloadCount}}}"
    ),
    "suggestions": (
        '{GlobalSearch(query:"zui/app:", requestedPage: {limit:15 offset:0 sortBy:RELEVANCE}) '
        "{Images {RepoName Tag}}}"
    ),
    "uses": (
        f'{{BaseImageList(image: "{REPO}:v1", requestedPage: {{limit:15 offset:0}}){{Page '
        "{TotalCount ItemCount} Results { RepoName Tag Description Manifests {Digest Platform "
        "{Os Arch} Size} Vendor DownloadCount LastUpdated IsSigned SignatureInfo { Tool "
        "IsTrusted Author } Vulnerabilities {MaxSeverity Count}}}}"
    ),
    # zli checks the schema before each command; GraphQL tools send the full introspection
    "zli introspection": (
        "{ __schema { queryType { fields { name args { name } type { name kind } } } "
        "types { name fields { name } } } }"
    ),
    "full introspection": get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    ),
}


def post(client: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post(SEARCH, json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def defaults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A registry with search at its default limits and one image, indexed."""
    with (
        live_server(tmp_path_factory.mktemp("search"), {"extensions": {"search": {}}}) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        put_manifest(client, REPO, "v1", image_manifest(client, REPO))
        deadline = time.monotonic() + 15  # the meta DB takes pushes in once a second
        while not post(client, '{ ImageList(repo: "zui/app") { Results { Tag } } }')["data"][
            "ImageList"
        ]["Results"]:
            assert time.monotonic() < deadline, "the push never reached search"
            time.sleep(0.2)
        client.live = live  # type: ignore[attr-defined]
        yield client


@pytest.mark.parametrize("page", sorted(ZUI_QUERIES))
def test_the_web_ui_and_zli_queries_pass_the_default_limits(
    defaults: httpx.Client, page: str
) -> None:
    response = defaults.get(SEARCH, params={"query": ZUI_QUERIES[page]})  # zui sends GETs
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.json()["errors"]
    assert response.json()["data"]


def _nested_types(levels: int) -> str:
    nested = "{ ofType " * levels + "{ name }" + " }" * levels
    return '{ __type(name: "ImageSummary") ' + nested + " }"


def _aliases(count: int) -> str:
    return "{ " + " ".join(f'a{n}: ImageList(repo: "") {{ Page {{ TotalCount }} }}'
                           for n in range(count)) + " }"  # fmt: skip


REFUSED = {
    "maxDepth": (_nested_types(15), {}),
    "maxAliases": (_aliases(11), {}),
    "maxPageSize": (
        'query ($n: Int) { ImageList(repo: "", requestedPage: {limit: $n}) { Results { Tag } } }',
        {"n": 101},
    ),
    # lists in lists: a page of 100 images, 10 manifests each (a guess), 10 layers each (too)
    "maxCost": (
        '{ a: ImageList(repo: "", requestedPage: {limit: 100}) { Results { Manifests { Layers '
        "{ Digest Size } History { Layer { Digest Size } HistoryDescription { Created CreatedBy "
        "Author Comment EmptyLayer } } Referrers { Annotations { Key Value } } } } } "
        'b: ImageList(repo: "", requestedPage: {limit: 100}) { Results { Manifests { Layers '
        "{ Digest Size } History { Layer { Digest Size } HistoryDescription { Created CreatedBy "
        "Author Comment EmptyLayer } } Referrers { Annotations { Key Value } } } } } }",
        {},
    ),
    "maxTokens": ("{ " + "__typename " * 2_500 + "}", {}),
}


@pytest.mark.parametrize("limit", sorted(REFUSED))
def test_each_limit_refuses_with_a_graphql_error_naming_it(
    defaults: httpx.Client, limit: str
) -> None:
    query, variables = REFUSED[limit]
    body = post(defaults, query, **variables)
    assert body["data"] is None
    [error] = body["errors"]
    assert f"extensions.search.limits.{limit}" in error["message"]
    assert error["extensions"] == {"limit": limit}


def test_one_alias_less_is_allowed(defaults: httpx.Client) -> None:
    body = post(defaults, _aliases(10))
    assert "errors" not in body and len(body["data"]) == 10


def test_client_errors_are_not_logged_as_errors(defaults: httpx.Client) -> None:
    live: LiveServer = defaults.live  # type: ignore[attr-defined]
    body = post(defaults, '{ CVEListForImage(image: "zui/app:v1") { Tag } }')
    assert body["errors"][0]["message"] == "CVE scanning is not enabled on this registry"
    assert post(defaults, '{ Image(image: "zui/app:nope") { Tag } }')["errors"]
    post(defaults, _aliases(11))
    assert "Traceback" not in live.log.read_text()
    assert [line for line in live.log_events() if line["level"] in ("error", "fatal")] == []


def test_bodies_past_64_kib_are_413_before_being_read(defaults: httpx.Client) -> None:
    query = "{ __typename }" + " " * 70_000
    response = defaults.post(SEARCH, json={"query": query})
    assert response.status_code == 413
    [error] = response.json()["errors"]
    assert error["message"] == "request body larger than 65536 bytes"  # what GraphQL clients read
    assert error["code"] == "UNSUPPORTED"  # what registry clients read


def test_deeply_nested_json_is_400(defaults: httpx.Client) -> None:
    deep = '{"query": "{ __typename }", "variables": {"a": ' + "[" * 1_000 + "]" * 1_000 + "}}"
    response = defaults.post(SEARCH, content=deep, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "levels deep" in response.json()["errors"][0]["detail"]["reason"]
    variables = "[" * 1_000 + "]" * 1_000
    response = defaults.get(SEARCH, params={"query": "{ __typename }", "variables": variables})
    assert response.status_code == 400, response.text


def test_an_unsupported_media_type_has_no_upload_code(defaults: httpx.Client) -> None:
    response = defaults.post(SEARCH, content=b"{ __typename }",
                             headers={"Content-Type": "application/graphql"})  # fmt: skip
    assert response.status_code == 415
    assert response.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_limits_are_configurable_and_a_slow_query_stops(tmp_path: Path) -> None:
    limits = {"maxAliases": 0, "maxPageSize": 2, "queryTimeout": "1ns"}
    with (
        live_server(tmp_path, {"extensions": {"search": {"limits": limits}}}) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        assert post(client, "{ a: __typename }")["errors"][0]["extensions"] == {
            "limit": "maxAliases"
        }
        paged = post(client, '{ ImageList(repo: "", requestedPage: {limit: 3}) { Page '
                     "{ TotalCount } } }")  # fmt: skip
        assert paged["errors"][0]["extensions"] == {"limit": "maxPageSize"}
        put_manifest(client, REPO, "v1", image_manifest(client, REPO))
        deadline = time.monotonic() + 15
        while True:  # until the image is indexed, any query that reads it runs out of time
            body = post(client, '{ ImageList(repo: "") { Results { Tag } } }')
            if body.get("errors"):
                break
            assert time.monotonic() < deadline, "the push never reached search"
            time.sleep(0.2)
        assert "extensions.search.limits.queryTimeout" in body["errors"][0]["message"]


def test_an_answer_past_max_result_items_stops(tmp_path: Path) -> None:
    """How many layers an image has is unknown until the query runs: the answer is bounded
    as it grows, and a query that does not ask for layers is not charged for them."""
    limits = {"maxResultItems": 5}
    with (
        live_server(tmp_path, {"extensions": {"search": {"limits": limits}}}) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        layers = [f"layer {n}".encode() for n in range(6)]
        put_manifest(client, REPO, "v1", image_manifest(client, REPO, layers=layers))
        tags = '{ ImageList(repo: "zui/app") { Results { Tag } } }'
        deadline = time.monotonic() + 15
        while not post(client, tags)["data"]["ImageList"]["Results"]:
            assert time.monotonic() < deadline, "the push never reached search"
            time.sleep(0.2)
        body = post(client, '{ ImageList(repo: "zui/app") { Results { Manifests '
                    "{ Layers { Digest } } } } }")  # fmt: skip
        assert "extensions.search.limits.maxResultItems" in body["errors"][0]["message"]
        sizes = post(client, '{ ImageList(repo: "zui/app") { Results { Size Manifests '
                     "{ Digest } } } }")  # fmt: skip
        assert "errors" not in sizes


# importing connexion warns (its jsonschema RefResolver, starlette's test client); the live
# servers import it in their own process, this test in-process
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient.")
def test_a_running_query_leaves_the_event_loop_to_other_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query that cannot finish until another request has been answered: it deadlocks (and
    times out after 10 s) if queries run on the event loop. The meta DB is in memory here, so
    queries run in threads (with a storage root they run in a search process: its tests are in
    test_search_process.py)."""
    from ocireg.app import create_app

    config = Config.model_validate(
        {"storage": {"rootDirectory": str(tmp_path)}, "extensions": {"search": {}}}
    )
    app = create_app(config, MemoryDriver())
    entered, released = threading.Event(), threading.Event()
    waited_in_vain: list[bool] = []
    original = SQLiteMetaDB.versions  # what a query reads first

    def held(self: SQLiteMetaDB) -> dict[str, int]:
        entered.set()
        waited_in_vain.append(not released.wait(10))
        return original(self)

    monkeypatch.setattr(SQLiteMetaDB, "versions", held)

    async def scenario() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            query = {"query": "{ RepoListWithNewestImage { Page { TotalCount } } }"}
            search = asyncio.create_task(client.get(SEARCH, params=query))
            await asyncio.to_thread(entered.wait, 10)
            other = await client.get("/v2/")
            released.set()
            assert (await search).status_code == 200
            return other.status_code

    assert asyncio.run(scenario()) == 200
    assert waited_in_vain == [False]


def test_layers_past_the_bound_are_refused_before_they_are_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bound counts a row's layers from its stored JSON: a query refused on it has not
    decoded (and kept, for the rest of the query) the long lists it was refused for."""
    from ocireg.ext.search.execution import Executor, SearchSchema
    from ocireg.ext.search.facts import FactsCache
    from ocireg.ext.search.schema import Search, build_schema
    from ocireg.ext.search.settings import SearchLimits
    from ocireg.meta.db import ImageRow
    from ocireg.meta.records import ImageRecord

    db = SQLiteMetaDB(":memory:")
    for n in range(3):
        layers = [f"sha256:{n}{i:063d}" for i in range(6)]
        image = ImageRecord(f"sha256:{n:064d}", OCI_MANIFEST, 1, layers=layers)
        db.put_image("r", image, [f"v{n}"], 1.0, "")
    decoded: list[str] = []
    original = ImageRow.__missing__

    def spy(self: ImageRow, key: str) -> Any:
        decoded.append(key)
        return original(self, key)

    monkeypatch.setattr(ImageRow, "__missing__", spy)
    executor = Executor(build_schema(SearchSchema), SearchLimits(maxResultItems=5))
    query = '{ ImageList(repo: "r") { Results { Manifests { Layers { Digest } } } } }'
    body = json.loads(executor.answer(query, None, None, Search(db, FactsCache(db))))
    assert len(body["errors"]) == 3  # one per image, each refused
    assert all("maxResultItems" in error["message"] for error in body["errors"])
    assert "layers" not in decoded


def test_a_remembered_query_is_checked_again_with_each_call_s_variables() -> None:
    """Documents are kept by query text: the limits still see each call's variables, and a
    text that failed fails again."""
    from ocireg.ext.search.execution import Executor, SearchSchema
    from ocireg.ext.search.facts import FactsCache
    from ocireg.ext.search.schema import Search, build_schema
    from ocireg.ext.search.settings import SearchLimits
    from ocireg.meta.records import ImageRecord

    db = SQLiteMetaDB(":memory:")
    for n in range(3):
        db.put_image(f"r{n}", ImageRecord(f"sha256:{n:064d}", OCI_MANIFEST, 1), ["v"], 1.0, "")
    executor = Executor(build_schema(SearchSchema), SearchLimits(maxPageSize=2))

    def answer(query: str, **variables: Any) -> dict[str, Any]:
        search = Search(db, FactsCache(db))
        return dict(json.loads(executor.answer(query, variables, None, search)))

    query = (
        'query($n: Int) { GlobalSearch(query: "r", requestedPage: {limit: $n, offset: 0}) '
        "{ Repos { Name } } }"
    )
    for n in (1, 2, 1):
        assert len(answer(query, n=n)["data"]["GlobalSearch"]["Repos"]) == n
    assert "maxPageSize" in answer(query, n=3)["errors"][0]["message"]
    for _ in range(2):
        assert answer("{ GlobalSearch(query: ) }")["errors"][0]["message"].startswith("Syntax")
