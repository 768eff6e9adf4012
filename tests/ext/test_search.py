"""search: zot's GraphQL schema, names checked against zot's, queries on a seeded registry."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import build_schema as parse_sdl

from ocireg.ext.search.schema import build_schema
from tests.oci import (
    EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    canonical,
    descriptor,
    error_codes,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)

ROOT = Path(__file__).resolve().parents[2]
ZOT_SCHEMA = ROOT.parent / "shared" / "reference" / "zot" / "schema.graphql"
ZLI_INTROSPECTION = (
    "{ __schema { queryType { fields { name args { name } type { name kind } } } "
    "types { name fields { name } } } }"
)
VENDOR = "org.opencontainers.image.vendor"


def test_spec_file_is_the_printed_schema() -> None:
    printed = str(build_schema()) + "\n"
    stored = (ROOT / "spec" / "graphql" / "schema.graphql").read_text()
    assert printed == stored, (
        "run: python -m ocireg.ext.search.schema > spec/graphql/schema.graphql"
    )


def signature(schema: Any) -> dict[str, Any]:
    """Every type's fields with their types and arguments, as names and type strings."""
    found: dict[str, Any] = {}
    for name, kind in schema.type_map.items():
        if name.startswith("__"):
            continue
        fields = getattr(kind, "fields", None) or {}
        found[name] = {
            field: (
                str(value.type),
                {a: str(v.type) for a, v in getattr(value, "args", {}).items()},
            )
            for field, value in fields.items()
        }
        if hasattr(kind, "values"):
            found[name] = sorted(kind.values)
    return found


@pytest.mark.skipif(not ZOT_SCHEMA.exists(), reason="needs ../shared/reference/zot/schema.graphql")
def test_every_name_and_type_is_zots() -> None:
    ours = parse_sdl((ROOT / "spec" / "graphql" / "schema.graphql").read_text())
    zot = parse_sdl(ZOT_SCHEMA.read_text())
    assert signature(ours) == signature(zot)


def graphql(client: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/v2/_zot/ext/search", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def data(client: httpx.Client, query: str, **variables: Any) -> Any:
    body = graphql(client, query, **variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_zli_introspection_lists_every_query_with_its_arguments(ext_client: httpx.Client) -> None:
    response = ext_client.get("/v2/_zot/ext/search", params={"query": ZLI_INTROSPECTION})
    schema = response.json()["data"]["__schema"]
    fields = {f["name"]: [a["name"] for a in f["args"]] for f in schema["queryType"]["fields"]}
    assert fields["CVEListForImage"] == [
        "image", "requestedPage", "searchedCVE", "excludedCVE", "severity"
    ]  # fmt: skip
    assert fields["GlobalSearch"] == ["query", "filter", "requestedPage"]
    assert fields["ImageList"] == ["repo", "requestedPage"]
    assert fields["Referrers"] == ["repo", "digest", "type"]
    assert len(fields) == 15
    types = {t["name"] for t in schema["types"]}
    assert {"ImageSummary", "RepoSummary", "PageInput", "Filter", "SortCriteria"} <= types


SOURCE = {"org.opencontainers.image.source": "https://example.com"}  # lint wants it


def _push(
    client: httpx.Client, repo: str, reference: str, document: dict[str, Any]
) -> dict[str, Any]:
    digest = put_manifest(client, repo, reference, document).headers["Docker-Content-Digest"]
    return {"mediaType": document["mediaType"], "digest": digest, "size": len(canonical(document))}


def _seed(client: httpx.Client) -> dict[str, Any]:
    base = image_manifest(
        client, "search/base", [b"layer-one"], annotations={**SOURCE, VENDOR: "Acme Widgets"}
    )
    base_descriptor = _push(client, "search/base", "v1", base)
    derived = image_manifest(client, "search/derived", [b"layer-one", b"layer-two"],
                             annotations=SOURCE)  # fmt: skip
    _push(client, "search/derived", "v1", derived)
    children = []
    for arch in ("amd64", "arm64"):
        config = json.dumps({"architecture": arch, "os": "linux"}).encode()
        child = image_manifest(client, "search/multi", [arch.encode()], config=config,
                               annotations=SOURCE)  # fmt: skip
        children.append(_push(client, "search/multi", f"tmp-{arch}", child))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    _push(client, "search/multi", "latest", index)
    push_blob(client, "search/base", b"{}")
    push_blob(client, "search/base", b"sbom")
    sbom = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": EMPTY,
        "layers": [descriptor(OCI_LAYER, b"sbom")],
        "subject": base_descriptor,
        "annotations": SOURCE,
    }
    put_manifest(client, "search/base", sha256(canonical(sbom)), sbom)
    return base_descriptor


@pytest.fixture(scope="module")
def seeded(extended: Any) -> dict[str, str]:
    """base (one layer), derived (base's layer and one more), multi (two platforms), a referrer."""
    with httpx.Client(base_url=extended.url, timeout=30) as client:
        base = _seed(client)
        deadline = time.monotonic() + 15  # the meta DB takes pushes in once a second
        while time.monotonic() < deadline:
            found = data(client, '{ ImageList(repo: "search/multi") { Page { TotalCount } } }')
            if found["ImageList"]["Page"]["TotalCount"] == 3:
                break
            time.sleep(0.2)
    return {"base": base["digest"]}


def test_image_list_and_expanded_repo_info(ext_client: httpx.Client, seeded: Any) -> None:
    images = data(
        ext_client,
        '{ ImageList(repo: "search/multi") { Page { TotalCount ItemCount }'
        " Results { RepoName Tag MediaType Manifests { Platform { Os Arch } } } } }",
    )
    results = images["ImageList"]["Results"]
    assert [r["Tag"] for r in results] == ["latest", "tmp-amd64", "tmp-arm64"]
    latest = results[0]
    assert latest["MediaType"] == OCI_INDEX
    platforms = [m["Platform"] for m in latest["Manifests"]]
    assert platforms == [{"Os": "linux", "Arch": "amd64"}, {"Os": "linux", "Arch": "arm64"}]
    info = data(
        ext_client,
        '{ ExpandedRepoInfo(repo: "search/base") { Images { Tag Vendor '
        "Referrers { ArtifactType } } Summary { Name Vendors } } }",
    )["ExpandedRepoInfo"]
    assert info["Summary"] == {"Name": "search/base", "Vendors": ["Acme Widgets"]}
    assert info["Images"][0]["Referrers"] == [{"ArtifactType": "application/spdx+json"}]
    nothing = data(ext_client, '{ ExpandedRepoInfo(repo: "no/such") { Images { Tag } } }')
    assert nothing["ExpandedRepoInfo"]["Images"] == []


def test_global_search_by_name_tag_digest_and_annotation(
    ext_client: httpx.Client, seeded: Any
) -> None:
    query = ("query ($q: String!) { GlobalSearch(query: $q) { Repos { Name Rank } "
             "Images { RepoName Tag } Page { TotalCount } } }")  # fmt: skip
    repos = data(ext_client, query, q="search/")["GlobalSearch"]["Repos"]
    assert {r["Name"] for r in repos} >= {"search/base", "search/derived", "search/multi"}
    exact = data(ext_client, query, q="derived")["GlobalSearch"]["Repos"]
    assert exact[0]["Name"] == "search/derived"
    by_vendor = data(ext_client, query, q="acme widgets")["GlobalSearch"]["Repos"]
    assert [r["Name"] for r in by_vendor] == ["search/base"]
    tags = data(ext_client, query, q="search/multi:tmp")["GlobalSearch"]["Images"]
    assert [i["Tag"] for i in tags] == ["tmp-amd64", "tmp-arm64"]
    anywhere = data(ext_client, query, q=":arm64")["GlobalSearch"]["Images"]
    assert anywhere == [{"RepoName": "search/multi", "Tag": "tmp-arm64"}]
    by_digest = data(ext_client, query, q=seeded["base"])["GlobalSearch"]["Images"]
    assert by_digest == [{"RepoName": "search/base", "Tag": "v1"}]


def test_base_and_derived_images(ext_client: httpx.Client, seeded: Any) -> None:
    derived = data(ext_client, '{ DerivedImageList(image: "search/base:v1") '
                   '{ Results { RepoName } } }')["DerivedImageList"]["Results"]  # fmt: skip
    assert derived == [{"RepoName": "search/derived"}]
    base = data(ext_client, '{ BaseImageList(image: "search/derived:v1") '
                '{ Results { RepoName } } }')["BaseImageList"]["Results"]  # fmt: skip
    assert base == [{"RepoName": "search/base"}]


def test_image_referrers_digest_and_paging(ext_client: httpx.Client, seeded: Any) -> None:
    image = data(ext_client, '{ Image(image: "search/base:v1") { Digest IsSigned } }')["Image"]
    assert image == {"Digest": seeded["base"], "IsSigned": False}
    query = ('query ($d: String!, $t: [String!]) { Referrers(repo: "search/base", digest: $d, '
             "type: $t) { ArtifactType } }")  # fmt: skip
    assert data(ext_client, query, d=seeded["base"], t=["application/spdx+json"])["Referrers"]
    assert data(ext_client, query, d=seeded["base"], t=["other"])["Referrers"] == []
    assert data(ext_client, query, d=seeded["base"], t=[""])["Referrers"]  # zot UI: "" is any
    layer = sha256(b"layer-two")[:20]
    found = data(
        ext_client, f'{{ ImageListForDigest(id: "{layer}") {{ Results {{ RepoName }} }} }}'
    )
    assert found["ImageListForDigest"]["Results"] == [{"RepoName": "search/derived"}]
    page = data(
        ext_client,
        "{ RepoListWithNewestImage(requestedPage: {limit: 1, offset: 0, "
        "sortBy: ALPHABETIC_DSC}) { Page { ItemCount TotalCount } Results { Name } } }",
    )
    repos = page["RepoListWithNewestImage"]
    assert repos["Page"]["ItemCount"] == 1 and repos["Page"]["TotalCount"] >= 3
    assert repos["Results"][0]["Name"] >= "search/multi"


def test_errors(ext_client: httpx.Client, seeded: Any) -> None:
    cve = graphql(ext_client, '{ CVEListForImage(image: "search/base:v1") { Tag } }')
    assert cve["errors"][0]["message"] == "CVE scanning is not enabled on this registry"
    negative = graphql(ext_client, "{ ImageList(repo: \"\", requestedPage: {limit: -1}) "
                       "{ Page { TotalCount } } }")  # fmt: skip
    assert "must not be negative" in negative["errors"][0]["message"]
    no_tag = graphql(ext_client, '{ Image(image: "search/base") { Tag } }')
    assert no_tag["errors"][0]["message"] == "no reference provided"
    unknown = graphql(ext_client, "{ NoSuchQuery }")
    assert unknown["errors"]
    for bad in (b"not json", b"[1]", b'{"query": 1}'):
        response = ext_client.post(
            "/v2/_zot/ext/search", content=bad, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] in ("UNSUPPORTED",)
    missing = ext_client.get("/v2/_zot/ext/search")
    assert missing.status_code == 400 and error_codes(missing)
