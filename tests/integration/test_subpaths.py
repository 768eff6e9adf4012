"""``storage.subPaths``, ``maxRepos`` and ``gcTimeWindow`` on a live registry: each sub-path is
a storage root of its own with its own dedupe and GC, a limit refuses new repositories, and GC
starts only inside its window. Small configs with the keys of zot's examples/config-multiple.json,
config-gc.json and the quota example."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.cli import main
from tests.integration.test_gc import gc_lines, wait_for
from tests.liveserver import live_server
from tests.oci import image_manifest, push_blob, put_manifest, sha256


def _layout(root: Path, repo: str) -> Path:
    return root / repo / "index.json"


def test_sub_path_repositories_live_in_their_own_root(tmp_path: Path) -> None:
    team = tmp_path / "team-root"
    storage = {"storage": {"subPaths": {"/team": {"rootDirectory": str(team)}}}}
    with live_server(tmp_path / "s", storage) as live, httpx.Client(base_url=live.url) as client:
        for repo in ("team/app", "team/a/b", "app", "other/app"):
            put_manifest(client, repo, "v1", image_manifest(client, repo, layers=[repo.encode()]))
        main = live.root
        assert _layout(team, "team/app").exists() and _layout(team, "team/a/b").exists()
        assert not (main / "team").exists()  # nothing of the sub-path in the main root
        assert _layout(main, "app").exists() and _layout(main, "other/app").exists()
        assert not (team / "app").exists() and not (team / "other").exists()
        catalog = client.get("/v2/_catalog").json()["repositories"]
        assert catalog == ["app", "other/app", "team/a/b", "team/app"]
        assert client.get("/v2/team/app/tags/list").json()["tags"] == ["v1"]
        layer = client.get(f"/v2/team/app/blobs/{sha256(b'team/app')}")
        assert layer.status_code == 200 and layer.content == b"team/app"
        assert client.delete("/v2/team/app/manifests/v1").status_code == 202
        assert client.get("/v2/team/app/tags/list").json()["tags"] == []
        # a mount from another root is not possible: it falls back to an upload
        mount = {"mount": sha256(b"app"), "from": "app"}
        assert client.post("/v2/team/app/blobs/uploads/", params=mount).status_code == 202


def _links(root: Path, repo: str, data: bytes) -> int:
    return (root / repo / "blobs" / "sha256" / sha256(data)[7:]).stat().st_nlink


def test_dedupe_and_gc_are_set_per_root(tmp_path: Path) -> None:
    team = tmp_path / "team-root"
    storage: dict[str, Any] = {
        "storage": {
            "dedupe": True,
            "gcDelay": "1s",
            "gcInterval": "300ms",
            "subPaths": {"/team": {"rootDirectory": str(team), "dedupe": False, "gc": False}},
        }
    }
    with live_server(tmp_path / "s", storage) as live, httpx.Client(base_url=live.url) as client:
        shared = b"the same layer everywhere"
        for repo in ("a/one", "a/two", "team/one", "team/two"):
            push_blob(client, repo, shared)
        assert _links(live.root, "a/one", shared) > 1  # main root: hard links to one file
        assert _links(team, "team/one", shared) == 1  # sub-path: dedupe off, own copies
        digests = {}
        for repo in ("a/one", "team/one"):
            document = image_manifest(client, repo, layers=[b"untagged " + repo.encode()])
            digests[repo] = put_manifest(client, repo, "t", document).headers[
                "Docker-Content-Digest"
            ]
            assert client.delete(f"/v2/{repo}/manifests/t").status_code == 202
        wait_for(lambda: client.head(f"/v2/a/one/manifests/{digests['a/one']}").status_code == 404)
        time.sleep(1.5)  # several rounds of the main root's GC
        assert client.head(f"/v2/team/one/manifests/{digests['team/one']}").status_code == 200
        assert all(line["repo"] != "team/one" for line in gc_lines(live))


def test_max_repos_refuses_a_new_repository_with_the_limit(tmp_path: Path) -> None:
    team = tmp_path / "team-root"
    storage = {"storage": {"maxRepos": 2, "subPaths": {"/team": {"rootDirectory": str(team)}}}}
    with live_server(tmp_path / "s", storage) as live, httpx.Client(base_url=live.url) as client:
        put_manifest(client, "first", "v1", image_manifest(client, "first", layers=[b"1"]))
        put_manifest(client, "team/x", "v1", image_manifest(client, "team/x", layers=[b"2"]))
        refused = client.post("/v2/third/blobs/uploads/")
        assert refused.status_code == 429
        error = refused.json()["errors"][0]
        assert error["code"] == "TOOMANYREQUESTS"
        assert error["detail"]["limit"] == 2 and error["detail"]["current"] == 2
        assert "storage.maxRepos" in error["detail"]["reason"]
        assert not (live.root / "third").exists()  # nothing written for it
        # existing repositories take pushes as before
        put_manifest(client, "first", "v2", image_manifest(client, "first", layers=[b"3"]))
        assert client.get("/v2/_catalog").json()["repositories"] == ["first", "team/x"]


def _window(start_offset_minutes: int, length_minutes: int) -> str:
    now = time.gmtime()
    start = (now.tm_hour * 60 + now.tm_min + start_offset_minutes) % (24 * 60)
    end = (start + length_minutes) % (24 * 60)
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def test_gc_runs_only_inside_its_time_window(tmp_path: Path) -> None:
    outside = {
        "storage": {"gcDelay": "0s", "gcInterval": "200ms", "gcTimeWindow": _window(120, 60)}
    }
    with live_server(tmp_path / "out", outside) as live, httpx.Client(base_url=live.url) as client:
        document = image_manifest(client, "w/app", layers=[b"outside"])
        digest = put_manifest(client, "w/app", "t", document).headers["Docker-Content-Digest"]
        client.delete("/v2/w/app/manifests/t")
        time.sleep(2.0)  # ten intervals
        assert client.head(f"/v2/w/app/manifests/{digest}").status_code == 200
        assert gc_lines(live) == []
    # gcDelay 1s: with 0s a round between a blob's push and its manifest's could take it
    inside = {"storage": {"gcDelay": "1s", "gcInterval": "200ms", "gcTimeWindow": _window(-1, 60)}}
    with live_server(tmp_path / "in", inside) as live, httpx.Client(base_url=live.url) as client:
        document = image_manifest(client, "w/app", layers=[b"inside"])
        digest = put_manifest(client, "w/app", "t", document).headers["Docker-Content-Digest"]
        client.delete("/v2/w/app/manifests/t")
        wait_for(lambda: client.head(f"/v2/w/app/manifests/{digest}").status_code == 404)


def test_a_sub_root_is_an_oci_layout_and_the_scrub_command_walks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    team = tmp_path / "team-root"
    storage = {"storage": {"subPaths": {"/team": {"rootDirectory": str(team)}}}}
    with live_server(tmp_path / "s", storage) as live, httpx.Client(base_url=live.url) as client:
        for repo in ("team/app", "app"):
            put_manifest(client, repo, "v1", image_manifest(client, repo, layers=[repo.encode()]))
        config = tmp_path / "s" / "config.json"
    if shutil.which("skopeo"):
        inspected = subprocess.run(
            ["skopeo", "inspect", f"oci:{team}/team/app:v1"], capture_output=True, check=True
        )
        assert json.loads(inspected.stdout)["Layers"] == [sha256(b"team/app")]
    blob = team / "team" / "app" / "blobs" / "sha256" / sha256(b"team/app")[7:]
    blob.write_bytes(b"rotten")
    assert main(["scrub", str(config)]) == 1
    rows = capsys.readouterr().out.splitlines()[1:]
    assert sorted((row.split()[0], row.split()[2]) for row in rows) == [
        ("app", "ok"),
        ("team/app", "affected"),
    ]
