"""`_oci` discovery and the extension documents, over HTTP against live registries."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from tests.extended import example_env
from tests.liveserver import live_server
from tests.oci import error_codes, image_manifest, put_manifest


def by_definition(listing: dict[str, object]) -> dict[str, dict[str, object]]:
    entries = listing["extensions"]
    assert isinstance(entries, list)
    return {str(entry["url"]).rsplit("/", 1)[-1]: entry for entry in entries}


def test_discovery_lists_each_enabled_namespace_from_its_specs(ext_client: httpx.Client) -> None:
    response = ext_client.get("/v2/_oci/ext/discover")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    listing = response.json()["extensions"]
    assert [entry["name"] for entry in listing] == ["_ocireg", "_zot", "_example"]
    entries = by_definition(response.json())
    assert set(entries) == {"ext-ocireg.md", "ext-zot.md", "ext-example-quota.md"}
    # zot lists its extensions as one `_zot` entry; userprefs is on with search, as in zot
    assert entries["ext-zot.md"]["endpoints"] == [
        "/v2/_zot/ext/mgmt",
        "/v2/_zot/ext/search",
        "/v2/_zot/ext/userprefs",
        "/v2/_zot/ext/cosign",
        "/v2/_zot/ext/notation",
    ]
    assert entries["ext-zot.md"]["description"] == (
        "This registry's _zot extensions: mgmt, search, userprefs, trust."
    )
    assert entries["ext-example-quota.md"]["endpoints"] == ["/v2/{name}/_example/ext/quota"]
    # the client report shares _ocireg with specs: one entry, linking an overview
    assert entries["ext-ocireg.md"]["endpoints"] == [
        "/v2/_ocireg/ext/specs/{document}",
        "/v2/_ocireg/clients/report",
    ]
    for entry in entries.values():
        assert entry["description"]


def test_every_url_serves_its_definition_and_fragment(ext_client: httpx.Client) -> None:
    for url, entry in by_definition(ext_client.get("/v2/_oci/ext/discover").json()).items():
        document = httpx.get(str(entry["url"]))
        assert document.status_code == 200, url
        assert document.headers["content-type"] == "text/markdown; charset=utf-8"
        assert document.text.startswith(f"# `{entry['name']}` extension")
        if url in ("ext-zot.md", "ext-ocireg.md"):
            continue  # the generated overviews: below
        fragment = ext_client.get(f"/v2/_ocireg/ext/specs/{url.removesuffix('.md')}.yaml")
        assert fragment.headers["content-type"] == "application/yaml"
        assert list(yaml.safe_load(fragment.text)["paths"]) == entry["endpoints"]


def test_a_shared_namespace_links_an_overview_of_its_extensions(ext_client: httpx.Client) -> None:
    overview = ext_client.get("/v2/_ocireg/ext/specs/ext-zot.md").text
    served: list[str] = []
    for name in ("mgmt", "search", "userprefs", "trust"):
        row = next(line for line in overview.splitlines() if line.startswith(f"| `{name}`"))
        document = f"ext-zot-{name}.md"
        assert f"[{document}]({document})" in row
        fragment = ext_client.get(f"/v2/_ocireg/ext/specs/ext-zot-{name}.yaml")
        paths = list(yaml.safe_load(fragment.text)["paths"])
        assert all(f"`{path}`" in row for path in paths)
        assert ext_client.get(f"/v2/_ocireg/ext/specs/{document}").status_code == 200
        served += paths
    entry = by_definition(ext_client.get("/v2/_oci/ext/discover").json())["ext-zot.md"]
    assert served == entry["endpoints"]


def test_unknown_or_malformed_document_names(ext_client: httpx.Client) -> None:
    missing = ext_client.get("/v2/_ocireg/ext/specs/ext-zot-sync.md")
    assert (missing.status_code, error_codes(missing)) == (404, ["EXTENSION_UNKNOWN"])
    malformed = ext_client.get("/v2/_ocireg/ext/specs/..%2Fopenapi.yaml")
    assert malformed.status_code in (400, 404)
    assert malformed.json()["errors"]


def test_repository_level_discovery(ext_client: httpx.Client) -> None:
    repo = "disco/repo"
    put_manifest(
        ext_client,
        repo,
        "v1",
        image_manifest(ext_client, repo, annotations={"org.opencontainers.image.source": "x"}),
    )
    response = ext_client.get(f"/v2/{repo}/_oci/ext/discover")
    assert response.status_code == 200
    (entry,) = response.json()["extensions"]
    assert entry["name"] == "_example"
    assert entry["endpoints"] == [f"/v2/{repo}/_example/ext/quota"]
    unknown = ext_client.get("/v2/no/such/_oci/ext/discover")
    assert (unknown.status_code, error_codes(unknown)) == (404, ["NAME_UNKNOWN"])
    invalid = ext_client.get("/v2/Bad/_oci/ext/discover")
    assert (invalid.status_code, error_codes(invalid)) == (400, ["NAME_INVALID"])


def test_merged_spec_includes_enabled_fragments(ext_client: httpx.Client) -> None:
    paths = ext_client.get("/openapi.json").json()["paths"]
    assert "/v2/_zot/ext/mgmt" in paths and "/v2/{name}/_example/ext/quota" in paths
    assert "/v2/{name}/manifests/{reference}" in paths


def test_a_disabled_extension_is_gone_from_discovery_and_routing(tmp_path: Path) -> None:
    sections = {"extensions": {"mgmt": {"enable": False}, "specs": {"enable": False}}}
    with live_server(tmp_path, sections, example_env()) as live:
        listing = httpx.get(f"{live.url}/v2/_oci/ext/discover")
        assert listing.json() == {"extensions": []}
        for path in ("/v2/_zot/ext/mgmt", "/v2/_ocireg/ext/specs/ext-zot-mgmt.md"):
            gone = httpx.get(live.url + path)
            assert (gone.status_code, error_codes(gone)) == (404, ["EXTENSION_UNKNOWN"])
        quota = httpx.get(f"{live.url}/v2/any/_example/ext/quota")  # quota not configured
        assert (quota.status_code, error_codes(quota)) == (404, ["EXTENSION_UNKNOWN"])
