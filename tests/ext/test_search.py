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


def _eventually(client: httpx.Client, query: str, check: Any) -> Any:
    """The query's data once ``check`` accepts it (the meta DB takes pushes in once a second)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = graphql(client, query)
        if "errors" not in body and check(body["data"]):
            return body["data"]
        time.sleep(0.2)
    return data(client, query)


HISTORY = [
    {"created": "2024-01-02T03:04:05Z", "created_by": "ADD rootfs.tar /", "author": "ann"},
    {"created_by": "ENV A=1", "empty_layer": True},
    {"created_by": "RUN make", "comment": "build"},
]
LAYERS_AND_HISTORY = (
    "{ Image(image: $image) { Vulnerabilities { MaxSeverity Count UnknownCount LowCount "
    "MediumCount HighCount CriticalCount } Manifests { Vulnerabilities { Count MaxSeverity } "
    "Layers { Digest Size } History { Layer { Digest Size } HistoryDescription { Created "
    "CreatedBy Author Comment EmptyLayer } } } } }"
)


def _layers_and_history(client: httpx.Client, image: str) -> Any:
    query = LAYERS_AND_HISTORY.replace("$image", json.dumps(image))
    return _eventually(client, query, lambda found: found["Image"] is not None)


def test_layer_sizes_history_and_unknown_vulnerabilities(ext_client: httpx.Client) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "history": HISTORY}).encode()
    blobs = [b"history-one", b"history-layer-two"]
    manifest = image_manifest(ext_client, "search/history", blobs, config=config,
                              annotations=SOURCE)  # fmt: skip
    _push(ext_client, "search/history", "v1", manifest)
    image = _layers_and_history(ext_client, "search/history:v1")["Image"]
    zero = {"MaxSeverity": "", "Count": 0, "UnknownCount": 0, "LowCount": 0, "MediumCount": 0,
            "HighCount": 0, "CriticalCount": 0}  # fmt: skip
    assert image["Vulnerabilities"] == zero  # zot's answer when nothing is known
    (only,) = image["Manifests"]
    assert only["Vulnerabilities"] == {"Count": 0, "MaxSeverity": ""}
    layers = [{"Digest": sha256(blob), "Size": str(len(blob))} for blob in blobs]
    assert only["Layers"] == layers
    assert only["History"] == [
        {"Layer": layers[0], "HistoryDescription": {"Created": "2024-01-02T03:04:05Z",
         "CreatedBy": "ADD rootfs.tar /", "Author": "ann", "Comment": "", "EmptyLayer": False}},
        {"Layer": None, "HistoryDescription": {"Created": None, "CreatedBy": "ENV A=1",
         "Author": "", "Comment": "", "EmptyLayer": True}},
        {"Layer": layers[1], "HistoryDescription": {"Created": None, "CreatedBy": "RUN make",
         "Author": "", "Comment": "build", "EmptyLayer": False}},
    ]  # fmt: skip


def test_history_without_config_history_and_with_too_much(ext_client: httpx.Client) -> None:
    plain = image_manifest(ext_client, "search/nohistory", [b"plain-layer"], annotations=SOURCE)
    _push(ext_client, "search/nohistory", "v1", plain)
    (only,) = _layers_and_history(ext_client, "search/nohistory:v1")["Image"]["Manifests"]
    layer = {"Digest": sha256(b"plain-layer"), "Size": str(len(b"plain-layer"))}
    empty = dict.fromkeys(("Created", "CreatedBy", "Author", "Comment", "EmptyLayer"))
    assert only["History"] == [{"Layer": layer, "HistoryDescription": empty}]
    # three entries that each claim a layer, one layer: zot stops at the first left without
    claims = [{"created_by": f"RUN step {n}"} for n in range(3)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "history": claims}).encode()
    short = image_manifest(ext_client, "search/shorthistory", [b"short-layer"], config=config,
                           annotations=SOURCE)  # fmt: skip
    _push(ext_client, "search/shorthistory", "v1", short)
    (only,) = _layers_and_history(ext_client, "search/shorthistory:v1")["Image"]["Manifests"]
    assert [(h["Layer"] or {}).get("Digest") for h in only["History"]] == [
        sha256(b"short-layer"), None
    ]  # fmt: skip
    assert [h["HistoryDescription"]["CreatedBy"] for h in only["History"]] == [
        "RUN step 0", "RUN step 1"
    ]  # fmt: skip


COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNED = "{ Image(image: %s) { Tag IsSigned SignatureInfo { Tool } Manifests { IsSigned } } }"


def _cosign_signature(client: httpx.Client, repo: str, signed: str) -> dict[str, Any]:
    """What ``cosign sign`` (before referrers) pushes: a simple-signing payload naming the
    image, with its signature in an annotation; tagged ``sha256-<hex>.sig``."""
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": signed},
                          "type": "cosign container image signature"}}).encode()  # fmt: skip
    config = b'{"architecture":"","os":"","config":{},"rootfs":{"type":"layers"}}'
    push_blob(client, repo, config)
    push_blob(client, repo, payload)
    layer = descriptor(COSIGN_LAYER, payload,
                       annotations={"dev.cosignproject.cosign/signature": "MEUCIQ=="})  # fmt: skip
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [layer]}  # fmt: skip


def test_a_legacy_cosign_tag_signs_its_image_and_is_no_image(ext_client: httpx.Client) -> None:
    repo = "search/cosigned"
    image = image_manifest(ext_client, repo, [b"cosigned-layer"], annotations=SOURCE)
    digest = _push(ext_client, repo, "v1", image)["digest"]
    unsigned = _eventually(ext_client, SIGNED % json.dumps(f"{repo}:v1"), lambda d: d["Image"])
    assert unsigned["Image"]["IsSigned"] is False
    time.sleep(0.05)  # the signature is the repository's newest push
    tag = "sha256-" + digest.removeprefix("sha256:") + ".sig"
    put_manifest(ext_client, repo, tag, _cosign_signature(ext_client, repo, digest))
    signed = _eventually(
        ext_client, SIGNED % json.dumps(f"{repo}:v1"), lambda d: d["Image"]["IsSigned"]
    )["Image"]
    assert signed == {"Tag": "v1", "IsSigned": True, "SignatureInfo": [{"Tool": "cosign"}],
                      "Manifests": [{"IsSigned": True}]}  # fmt: skip
    listed = data(ext_client, f'{{ ImageList(repo: "{repo}") {{ Results {{ Tag }} }} }}')
    assert listed["ImageList"]["Results"] == [{"Tag": "v1"}]
    expanded = data(ext_client, f'{{ ExpandedRepoInfo(repo: "{repo}") {{ Images {{ Tag }} '
                    "Summary { NewestImage { Tag IsSigned } } } }")  # fmt: skip
    assert expanded["ExpandedRepoInfo"] == {
        "Images": [{"Tag": "v1"}], "Summary": {"NewestImage": {"Tag": "v1", "IsSigned": True}}
    }  # fmt: skip
    newest = data(
        ext_client, "{ RepoListWithNewestImage { Results { Name NewestImage { Tag } } } }"
    )
    (mine,) = [r for r in newest["RepoListWithNewestImage"]["Results"] if r["Name"] == repo]
    assert mine["NewestImage"] == {"Tag": "v1"}
    only_signed = data(
        ext_client,
        f'{{ GlobalSearch(query: "{repo}", filter: {{HasToBeSigned: true}}) '
        "{ Repos { Name NewestImage { Tag } } } }",
    )
    assert only_signed["GlobalSearch"]["Repos"] == [{"Name": repo, "NewestImage": {"Tag": "v1"}}]
    by_tag = data(ext_client, '{ GlobalSearch(query: ":.sig") { Images { RepoName Tag } } }')
    assert [i for i in by_tag["GlobalSearch"]["Images"] if i["RepoName"] == repo] == []
    hidden = graphql(ext_client, SIGNED % json.dumps(f"{repo}:{tag}"))
    assert hidden["errors"] and hidden["data"] is None


def test_text_index_finds_each_entry_once_and_only_whole_entries() -> None:
    from ocireg.ext.search.facts import RepoFacts, TextIndex

    facts = {
        "a/ab": RepoFacts(1, tagged=1, text="abab\nxyz"),
        "b/ba": RepoFacts(1, tagged=1, text=""),
        "c/ca": RepoFacts(1, tagged=0, text="ab"),  # untagged: never found
        "d/d": RepoFacts(1, tagged=1, text="zab"),
    }
    index = TextIndex(facts)
    assert index.holding("ab") == (["a/ab"], ["d/d"])
    assert index.holding("a") == (["a/ab", "b/ba"], ["d/d"])
    assert index.holding("b/b") == (["b/ba"], [])
    assert index.holding("zz") == ([], [])  # "xyz" then "zab": not across two entries
    assert index.holding("z\nab") == ([], [])
