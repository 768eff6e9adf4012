"""A manifest deleted through one instance is gone from another that served it, although that
one keeps the bytes of manifests it served (``ocireg.registry.manifestbytes``): the index
decides what exists."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.test_s3 import _s3_config, _wait_for
from tests.liveserver import live_server
from tests.oci import OCI_MANIFEST, canonical, error_codes, image_manifest, put_manifest
from tests.postgres import Postgres
from tests.s3server import ENV, S3Endpoint

ACCEPT = {"Accept": OCI_MANIFEST}


def test_a_manifest_deleted_through_one_instance_is_gone_from_another_that_served_it(
    tmp_path: Path, s3_endpoint: S3Endpoint, postgres: Postgres
) -> None:
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
