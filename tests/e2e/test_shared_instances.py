"""Two instances on one bucket and one PostgreSQL meta DB, each with a local directory of its
own (two machines): repository locks are PostgreSQL advisory locks, so concurrent tag pushes
to one repository through both lose nothing, and each instance sees the other's pushes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.e2e.test_s3 import _s3_config, _wait_for
from tests.liveserver import live_server
from tests.oci import OCI_MANIFEST, canonical, error_codes, image_manifest, put_manifest
from tests.postgres import Postgres, postgres
from tests.s3server import ENV, S3Endpoint, s3_endpoint

__all__ = ["postgres", "s3_endpoint"]  # session fixtures, used here by name

WRITERS = 16
ACCEPT = {"Accept": OCI_MANIFEST}


def test_concurrent_tag_pushes_through_two_instances_lose_nothing(
    tmp_path: Path, s3_endpoint: S3Endpoint, postgres: Postgres
) -> None:
    config = _s3_config(s3_endpoint, s3_endpoint.new_bucket())
    config["storage"]["cacheDriver"] = {"name": "postgres", "url": postgres.new_database()}
    repo = "shared/tags"
    with (
        live_server(tmp_path / "one", config, env=ENV) as one,
        live_server(tmp_path / "two", config, env=ENV) as two,
    ):
        for server in (one, two):
            _wait_for(server, "start-up cleanup done")
        clients = [httpx.Client(base_url=s.url, timeout=120) for s in (one, two)]
        try:
            document = image_manifest(clients[0], repo)
            tags = [f"{side}-{n}" for side in ("one", "two") for n in range(WRITERS)]

            def push(tag: str) -> int:
                client = clients[0] if tag.startswith("one") else clients[1]
                return put_manifest(client, repo, tag, document).status_code

            with ThreadPoolExecutor(2 * WRITERS) as pool:
                assert set(pool.map(push, tags)) == {201}
            for client in clients:
                listed = client.get(f"/v2/{repo}/tags/list").json()["tags"]
                assert sorted(listed) == sorted(tags)
        finally:
            for client in clients:
                client.close()


def test_a_manifest_deleted_through_one_instance_is_gone_from_another_that_served_it(
    tmp_path: Path, s3_endpoint: S3Endpoint, postgres: Postgres
) -> None:
    # The second instance keeps the bytes of what it served; the index decides what exists.
    config = _s3_config(s3_endpoint, s3_endpoint.new_bucket())
    config["storage"]["cacheDriver"] = {"name": "postgres", "url": postgres.new_database()}
    repo = "shared/deleted"
    with (
        live_server(tmp_path / "one", config, env=ENV) as one,
        live_server(tmp_path / "two", config, env=ENV) as two,
        httpx.Client(base_url=one.url, timeout=60) as first,
        httpx.Client(base_url=two.url, timeout=60) as second,
    ):
        for server in (one, two):
            _wait_for(server, "start-up cleanup done")
        document = image_manifest(first, repo)
        digest = put_manifest(first, repo, "v1", document).headers["Docker-Content-Digest"]
        for reference in ("v1", digest, "v1"):
            served = second.get(f"/v2/{repo}/manifests/{reference}", headers=ACCEPT)
            assert served.status_code == 200 and served.content == canonical(document)
        assert first.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
        for reference in ("v1", digest):
            gone = second.get(f"/v2/{repo}/manifests/{reference}", headers=ACCEPT)
            assert gone.status_code == 404
            assert error_codes(gone) == ["MANIFEST_UNKNOWN"]
