"""The meta DB of a live registry: kept current while serving and across restarts, rebuilt."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, put_manifest


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
