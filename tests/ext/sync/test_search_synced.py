"""A synced image shows in search like a pushed one: GlobalSearch and ImageList on a mirror
(sync + search) find what a periodic round copied and what a pull fetched on demand, under the
local name the content rules give it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.liveserver import LiveServer, live_server
from tests.oci import OCI_MANIFEST, canonical, descriptor, image_manifest, put_manifest

pytestmark = pytest.mark.e2e
SEARCH = "/v2/_zot/ext/search"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """An upstream ocireg holding ``team/app:v1``; (server, the image's digest)."""
    with (
        live_server(tmp_path_factory.mktemp("upstream")) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        manifest = image_manifest(client, "team/app", [b"synced and searched"])
        put_manifest(client, "team/app", "v1", manifest)
        yield server, descriptor(OCI_MANIFEST, canonical(manifest))["digest"]


def _found(client: httpx.Client, repo: str) -> dict[str, Any]:
    """GlobalSearch and ImageList for ``repo``, once both find it (the meta DB is written
    within a second of the copy)."""
    query = (
        f'{{ GlobalSearch(query: "{repo}") {{ Repos {{ Name NewestImage {{ Tag Digest }} }} }} '
        f'ImageList(repo: "{repo}") {{ Results {{ RepoName Tag Digest }} }} }}'
    )
    deadline = time.monotonic() + 30
    while True:
        answer = client.post(SEARCH, json={"query": query})
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()["data"]
        if data["GlobalSearch"]["Repos"] and data["ImageList"]["Results"]:
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"{repo} not found by search: {data}")
        time.sleep(0.2)


def _mirror(url: str, **registry: Any) -> dict[str, Any]:
    upstream = {"urls": [url], "tlsVerify": False, **registry}
    return {"extensions": {"search": {}, "sync": {"registries": [upstream]}}}


def test_an_image_synced_by_a_periodic_round_is_found_by_search(
    tmp_path: Path, upstream: tuple[LiveServer, str]
) -> None:
    server, digest = upstream
    rule = {"prefix": "/team/**", "destination": "/mirrored", "stripPrefix": True}
    config = _mirror(server.url, content=[rule], pollInterval="1h")
    with (
        live_server(tmp_path / "mirror", config) as mirror,
        httpx.Client(base_url=mirror.url, timeout=30) as client,
    ):
        data = _found(client, "mirrored/app")
    assert data["GlobalSearch"]["Repos"] == [
        {"Name": "mirrored/app", "NewestImage": {"Tag": "v1", "Digest": digest}}
    ]
    assert data["ImageList"]["Results"] == [
        {"RepoName": "mirrored/app", "Tag": "v1", "Digest": digest}
    ]


def test_an_image_pulled_on_demand_is_found_by_search(
    tmp_path: Path, upstream: tuple[LiveServer, str]
) -> None:
    server, digest = upstream
    with (
        live_server(tmp_path / "mirror", _mirror(server.url, onDemand=True)) as mirror,
        httpx.Client(base_url=mirror.url, timeout=30) as client,
    ):
        empty = client.post(SEARCH, json={"query": '{ GlobalSearch(query: "team/app") '
                                                    "{ Repos { Name } } }"})  # fmt: skip
        assert empty.json()["data"]["GlobalSearch"]["Repos"] == []  # not here before the pull
        pulled = client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert pulled.headers["Docker-Content-Digest"] == digest
        data = _found(client, "team/app")
    assert data["GlobalSearch"]["Repos"] == [
        {"Name": "team/app", "NewestImage": {"Tag": "v1", "Digest": digest}}
    ]
    assert data["ImageList"]["Results"] == [{"RepoName": "team/app", "Tag": "v1", "Digest": digest}]
