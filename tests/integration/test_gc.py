"""GC on a live registry: untagged content goes, and concurrent pushes lose nothing."""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.liveserver import LiveServer, live_server
from tests.oci import (
    OCI_LAYER,
    canonical,
    descriptor,
    image_manifest,
    put_manifest,
    sha256,
)


def gc_lines(server: LiveServer) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    return [line for line in lines if line.get("msg") == "gc done"]


def wait_for(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_untagged_image_is_collected_after_gc_delay(tmp_path: Path) -> None:
    storage = {"storage": {"gcDelay": "1s", "gcInterval": "300ms"}}
    with live_server(tmp_path, storage) as live, httpx.Client(base_url=live.url) as client:
        repo = "gc/app"
        keep = image_manifest(client, repo, layers=[b"keep"])
        put_manifest(client, repo, "keep", keep)
        gone = image_manifest(client, repo, layers=[b"gone"])
        digest = put_manifest(client, repo, "gone", gone).headers["Docker-Content-Digest"]
        assert client.delete(f"/v2/{repo}/manifests/gone").status_code == 202
        wait_for(lambda: client.head(f"/v2/{repo}/manifests/{digest}").status_code == 404)
        assert client.head(f"/v2/{repo}/blobs/{sha256(b'gone')}").status_code == 404
        assert client.head(f"/v2/{repo}/blobs/{sha256(b'keep')}").status_code == 200
        assert client.get(f"/v2/{repo}/manifests/keep").content == canonical(keep)
        assert any(digest in line["manifests"] for line in gc_lines(live))  # type: ignore[operator]


def _push_image(url: str, repo: str, n: int) -> int:
    with httpx.Client(base_url=url, timeout=30) as client:
        layer = f"layer-{repo}-{n}".encode()
        document = image_manifest(client, repo, layers=[layer])
        time.sleep(random.uniform(0, 0.3))  # between blob and manifest push, GC runs
        response = client.put(
            f"/v2/{repo}/manifests/t{n}",
            content=canonical(document),
            headers={"Content-Type": document["mediaType"]},
        )
        return response.status_code


def test_concurrent_pushes_and_mounts_lose_nothing_to_gc(tmp_path: Path) -> None:
    storage = {"storage": {"gcDelay": "2s", "gcInterval": "100ms"}, "http": {"workers": 2}}
    with live_server(tmp_path, storage) as live, httpx.Client(base_url=live.url) as client:
        # a blob made old on disk, then mounted into another repository before its manifest
        old = b"an old shared layer"
        # referenced in the source (so GC keeps it there before the mount comes)
        put_manifest(client, "gc/source", "v1", image_manifest(client, "gc/source", [old]))
        path = live.root / "gc/source/blobs/sha256" / sha256(old).split(":")[1]
        os.utime(path, (time.time() - 3600, time.time() - 3600))
        mounted = client.post(
            "/v2/gc/target/blobs/uploads/", params={"mount": sha256(old), "from": "gc/source"}
        )
        assert mounted.status_code == 201
        seen = len(gc_lines(live))
        # two GC rounds over the target while the mounted blob is still unreferenced
        wait_for(lambda: sum(line["repo"] == "gc/target" for line in gc_lines(live)[seen:]) >= 2)
        document = image_manifest(client, "gc/target", layers=[])  # pushes only the config
        document["layers"] = [descriptor(OCI_LAYER, old)]  # the mounted blob, not pushed again
        put_manifest(client, "gc/target", "mounted", document)
        with ThreadPoolExecutor(8) as pool:
            pushes = pool.map(lambda n: _push_image(live.url, f"gc/r{n % 4}", n), range(40))
            assert list(pushes) == [201] * 40
        wait_for(lambda: len(gc_lines(live)) > seen + 20)  # rounds ran meanwhile and after
        assert client.get(f"/v2/gc/target/blobs/{sha256(old)}").content == old
        for n in range(40):
            repo = f"gc/r{n % 4}"
            assert client.get(f"/v2/{repo}/manifests/t{n}").status_code == 200
            layer = f"layer-{repo}-{n}".encode()
            assert client.get(f"/v2/{repo}/blobs/{sha256(layer)}").content == layer
