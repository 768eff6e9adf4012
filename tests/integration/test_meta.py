"""The meta DB of a live registry: kept current while serving and across restarts, rebuilt."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.liveserver import LiveServer, live_server
from tests.oci import (
    EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    image_manifest,
    put_manifest,
    sha256,
)


def rows(root: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(root / ".ocireg" / "meta.db") as db:
        return db.execute(query, args).fetchall()


def sync_lines(server: LiveServer) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    return [line for line in lines if line.get("msg") == "meta sync done"]


def eventually(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.1)


def test_pushes_pulls_and_restarts(tmp_path: Path) -> None:
    with live_server(tmp_path) as live, httpx.Client(base_url=live.url) as client:
        document = image_manifest(client, "meta/app", annotations={"org.example": "x"})
        digest = put_manifest(client, "meta/app", "v1", document).headers["Docker-Content-Digest"]
        for _ in range(4):
            assert client.get("/v2/meta/app/manifests/v1").status_code == 200
        client.head("/v2/meta/app/manifests/v1")  # a HEAD is not a download
        root = live.root
        query = "SELECT downloads, pushed_at IS NOT NULL FROM images WHERE digest = ?"
        eventually(lambda: rows(root, query, digest) == [(4, 1)])
        assert rows(root, "SELECT tag, digest FROM tags") == [("v1", digest)]
        assert client.delete("/v2/meta/app/manifests/v1").status_code == 202
        eventually(lambda: rows(root, "SELECT tag FROM tags") == [])

    with live_server(tmp_path) as live:  # a current DB: nothing to read again
        eventually(lambda: len(sync_lines(live)) == 1)
        assert sync_lines(live)[0]["rebuilt"] == 0
        assert rows(root, "SELECT downloads FROM images WHERE digest = ?", digest) == [(4,)]

    (root / ".ocireg" / "meta.db").unlink()
    with live_server(tmp_path) as live:  # lost: rebuilt from storage
        eventually(lambda: len(sync_lines(live)) == 1)
        assert sync_lines(live)[0]["rebuilt"] == 1
        annotations = rows(root, "SELECT annotations FROM images WHERE digest = ?", digest)
        assert json.loads(annotations[0][0]) == {"org.example": "x"}


def plant_poisoned(root: Path, repo: str) -> None:
    """What an older version accepted and stored: a layer size beyond int64."""
    directory = root / repo
    (directory / "blobs" / "sha256").mkdir(parents=True)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layer = {"mediaType": OCI_LAYER, "digest": sha256(b"x"), "size": 2**64}
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": EMPTY,
                "layers": [layer]}  # fmt: skip
    data = json.dumps(document).encode()
    (directory / "blobs" / "sha256" / sha256(data).split(":")[1]).write_bytes(data)
    entry = {"mediaType": OCI_MANIFEST, "digest": sha256(data), "size": len(data),
             "annotations": {"org.opencontainers.image.ref.name": "bad"}}  # fmt: skip
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    (directory / "index.json").write_text(json.dumps(index))


def test_a_poisoned_record_in_storage_is_skipped_and_the_rest_is_searchable(
    tmp_path: Path,
) -> None:
    search = {"extensions": {"search": {}}}
    names = ["a/first", "m/middle", "z/last"]
    with live_server(tmp_path, search) as live, httpx.Client(base_url=live.url) as client:
        for name in names:
            put_manifest(client, name, "v1", image_manifest(client, name))
    plant_poisoned(tmp_path / "data", "b/poisoned")
    (tmp_path / "data" / ".ocireg" / "meta.db").unlink()  # every repository is read again
    with live_server(tmp_path, search) as live, httpx.Client(base_url=live.url) as client:
        eventually(lambda: len(sync_lines(live)) == 1)
        query = "{ RepoListWithNewestImage { Results { Name } } }"
        answer = client.post("/v2/_zot/ext/search", json={"query": query}).json()
        found = [r["Name"] for r in answer["data"]["RepoListWithNewestImage"]["Results"]]
        assert sorted(found) == names
        lines = [json.loads(line) for line in live.log_lines() if line.startswith("{")]
        (skipped,) = [line for line in lines if line.get("repo") == "b/poisoned"]
        assert skipped["level"] == "warn" and "skipped" in skipped["msg"]


def test_a_config_the_db_could_not_store_does_not_lose_its_batch(tmp_path: Path) -> None:
    """A lone surrogate is valid JSON but no UTF-8: SQLite refused it, and the rest of that
    second's pushes, other users' too, never reached search."""
    search = {"extensions": {"search": {}}}
    with live_server(tmp_path, search) as live, httpx.Client(base_url=live.url) as client:
        config = b'{"architecture":"amd64","os":"linux","created":"\\ud800"}'
        odd = image_manifest(client, "odd/config", config=config)
        others = [image_manifest(client, f"other/{n}", layers=[b"%d" % n]) for n in range(3)]
        put_manifest(client, "odd/config", "v1", odd)  # the same batch: within a second
        for n, document in enumerate(others):
            put_manifest(client, f"other/{n}", "v1", document)
        query = "{ RepoListWithNewestImage { Results { Name } } }"

        def listed() -> list[str]:
            answer = client.post("/v2/_zot/ext/search", json={"query": query}).json()
            results = answer["data"]["RepoListWithNewestImage"]["Results"]
            return sorted(result["Name"] for result in results)

        eventually(lambda: listed() == ["odd/config", "other/0", "other/1", "other/2"])
