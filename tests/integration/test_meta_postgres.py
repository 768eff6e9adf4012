"""A live registry whose meta DB is PostgreSQL (``storage.cacheDriver: {name: postgres}``):
pushes, pulls, deletes and search go through the database, and a restart finds it current."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_meta import eventually, sync_lines
from tests.liveserver import live_server
from tests.oci import image_manifest, put_manifest
from tests.postgres import Postgres, postgres

__all__ = ["postgres"]  # the session fixture, used here by name


def pg_rows(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as db:
        return db.execute(query, args).fetchall()


def search(client: httpx.Client, query: str) -> Any:
    answer = client.post("/v2/_zot/ext/search", json={"query": query}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def local_tables(root: Path) -> set[str]:
    file = root / ".ocireg" / "meta.db"
    if not file.exists():
        return set()
    with sqlite3.connect(file) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_push_pull_search_and_restart_on_postgres(tmp_path: Path, postgres: Postgres) -> None:
    url = postgres.new_database()
    extra = {
        "storage": {"cacheDriver": {"name": "postgres", "url": url}},
        "extensions": {"search": {}},
    }
    repos = "{ RepoListWithNewestImage { Results { Name DownloadCount } } }"
    with live_server(tmp_path, extra) as live, httpx.Client(base_url=live.url) as client:
        document = image_manifest(client, "pg/app", annotations={"org.example": "x"})
        digest = put_manifest(client, "pg/app", "v1", document).headers["Docker-Content-Digest"]
        for _ in range(3):
            assert client.get("/v2/pg/app/manifests/v1").status_code == 200
        query = "SELECT downloads FROM images WHERE repo = %s AND digest = %s"
        eventually(lambda: pg_rows(url, query, "pg/app", digest) == [(3,)])
        eventually(
            lambda: (
                search(client, repos)["RepoListWithNewestImage"]["Results"]
                == [{"Name": "pg/app", "DownloadCount": 3}]
            )
        )
        put_manifest(client, "pg/app", "v2", document)
        eventually(lambda: pg_rows(url, "SELECT tag FROM tags ORDER BY tag") == [("v1",), ("v2",)])
        assert client.delete("/v2/pg/app/manifests/v2").status_code == 202
        eventually(lambda: pg_rows(url, "SELECT tag FROM tags") == [("v1",)])
        catalog = client.get("/v2/_catalog").json()
        assert catalog == {"repositories": ["pg/app"]}
        assert pg_rows(url, "SELECT name FROM catalog") == [("pg/app",)]
    assert not {"images", "tags", "repos"} & local_tables(live.root)  # not in the local file

    with live_server(tmp_path, extra) as live, httpx.Client(base_url=live.url) as client:
        eventually(lambda: len(sync_lines(live)) == 1)
        assert sync_lines(live)[0]["rebuilt"] == 0  # the database was current
        answer = search(client, '{ GlobalSearch(query: "pg") { Repos { Name } } }')
        assert answer["GlobalSearch"]["Repos"] == [{"Name": "pg/app"}]
