"""Dedupe: one file for identical blobs across repositories, converted when the setting flips."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, push_blob, put_manifest, sha256

LAYER = b"a layer many repositories share" * 100


def blob_path(root: Path, repo: str, data: bytes) -> Path:
    return root / repo / "blobs" / "sha256" / sha256(data).split(":")[1]


def store_path(root: Path, data: bytes) -> Path:
    return root / ".ocireg" / "blobs" / "sha256" / sha256(data).split(":")[1]


def wait_for_log(server: LiveServer, msg: str, count: int = 1, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in server.log_lines() if x.startswith("{")]
        if sum(line.get("msg") == msg for line in lines) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {msg!r} in the log")


def test_identical_blobs_share_one_file_and_gc_keeps_them_right(tmp_path: Path) -> None:
    storage = {"storage": {"gcDelay": "1s", "gcInterval": "200ms"}}
    with live_server(tmp_path, storage) as live, httpx.Client(base_url=live.url) as client:
        for repo in ("d/one", "d/two"):
            put_manifest(client, repo, "v1", image_manifest(client, repo, [LAYER]))
        one, two = blob_path(live.root, "d/one", LAYER), blob_path(live.root, "d/two", LAYER)
        assert one.stat().st_ino == two.stat().st_ino == store_path(live.root, LAYER).stat().st_ino
        assert one.stat().st_nlink == 3  # two repositories and the store
        # d/one lets go of the image; GC removes its name only
        assert client.delete("/v2/d/one/manifests/v1").status_code == 202
        deadline = time.monotonic() + 20
        while one.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not one.exists()
        assert client.get(f"/v2/d/two/blobs/{sha256(LAYER)}").content == LAYER
        assert two.stat().st_nlink == 2
        # and once nothing names it, the store lets go too
        assert client.delete("/v2/d/two/manifests/v1").status_code == 202
        while store_path(live.root, LAYER).exists() and time.monotonic() < deadline + 10:
            time.sleep(0.1)
        assert not store_path(live.root, LAYER).exists()


def test_switching_dedupe_converts_existing_storage(tmp_path: Path) -> None:
    repos = ("c/one", "c/two")

    def serve(dedupe: bool) -> LiveServer:
        return live_server(tmp_path, {"storage": {"dedupe": dedupe}})  # type: ignore[return-value]

    with serve(False) as live, httpx.Client(base_url=live.url) as client:
        for repo in repos:
            push_blob(client, repo, LAYER)
        root = live.root
    inodes = {blob_path(root, repo, LAYER).stat().st_ino for repo in repos}
    assert len(inodes) == 2 and not store_path(root, LAYER).exists()

    with serve(True) as live:
        wait_for_log(live, "dedupe conversion done")
        inodes = {blob_path(root, repo, LAYER).stat().st_ino for repo in repos}
        assert inodes == {store_path(root, LAYER).stat().st_ino}
    assert json.loads((root / ".ocireg" / "dedupe.json").read_text()) == {"dedupe": True}

    with serve(False) as live, httpx.Client(base_url=live.url) as client:
        wait_for_log(live, "dedupe conversion done")
        for repo in repos:
            assert client.get(f"/v2/{repo}/blobs/{sha256(LAYER)}").content == LAYER
    assert {blob_path(root, repo, LAYER).stat().st_nlink for repo in repos} == {1}
    assert not (root / ".ocireg" / "blobs").exists()
    assert json.loads((root / ".ocireg" / "dedupe.json").read_text()) == {"dedupe": False}
