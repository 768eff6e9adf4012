"""The catalog and automatic mounts come from the meta DB's index of repositories, never from a
walk of storage on the request path: listed as soon as a push creates a repository, in every
worker, and made equal to storage by the sync at start."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.liveserver import live_server
from tests.oci import image_manifest, push_blob, put_manifest


def catalog(url: str) -> list[str]:
    # a fresh connection each time, so the kernel spreads requests over the workers
    names: list[str] = httpx.get(f"{url}/v2/_catalog").json()["repositories"]
    return names


def test_created_repositories_are_listed_at_once_by_every_worker(tmp_path: Path) -> None:
    with live_server(tmp_path, {"http": {"workers": 2}}) as live:
        for number in range(8):
            with httpx.Client(base_url=live.url) as client:
                push_blob(client, f"team/app{number}", b"a layer")
            assert f"team/app{number}" in catalog(live.url)


def test_storage_changed_behind_the_registry_is_seen_at_the_next_start(tmp_path: Path) -> None:
    with live_server(tmp_path) as live, httpx.Client(base_url=live.url) as client:
        put_manifest(client, "made/here", "v1", image_manifest(client, "made/here"))
        # another tool writes a layout into the root: no request walks storage to find it
        shutil.copytree(live.root / "made" / "here", live.root / "planted" / "by-hand")
        assert catalog(live.url) == ["made/here"]
        digest = push_blob(client, "made/here", b"only here")
        mounted = client.post("/v2/other/blobs/uploads/", params={"mount": digest})
        assert mounted.status_code == 201  # found through the index
    with live_server(tmp_path) as live:
        assert catalog(live.url) == ["made/here", "other", "planted/by-hand"]
        shutil.rmtree(live.root / "planted")
    with live_server(tmp_path) as live:
        assert catalog(live.url) == ["made/here", "other"]


def test_pages_of_the_catalog(tmp_path: Path) -> None:
    with live_server(tmp_path) as live, httpx.Client(base_url=live.url) as client:
        names = sorted(f"r{number:02d}" for number in range(12))
        for name in reversed(names):
            push_blob(client, name, b"x")
        response = client.get("/v2/_catalog", params={"n": 5})
        assert response.json()["repositories"] == names[:5]
        assert response.headers["Link"] == '</v2/_catalog?n=5&last=r04>; rel="next"'
        response = client.get("/v2/_catalog", params={"n": 5, "last": "r09"})
        assert response.json()["repositories"] == names[10:]
        assert "Link" not in response.headers
        assert client.get("/v2/_catalog", params={"n": 0}).json()["repositories"] == []
        assert client.get("/v2/_catalog", params={"last": "r10"}).json()["repositories"] == ["r11"]
