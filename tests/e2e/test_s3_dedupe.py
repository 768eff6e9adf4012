"""Dedupe by reference on an s3 root, end to end against moto's S3 server: one object holds a
digest's bytes, every repository that commits it gets a zero-byte placeholder, reads resolve
placeholders, GC drops one repository's reference at a time, and switching ``storage.dedupe``
converts the bucket once. Object sizes are read through the S3 API."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, push_blob, put_manifest, sha256
from tests.s3server import ACCESS_KEY, ENV, REGION, SECRET_KEY, S3Endpoint, s3_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, used here by name

pytestmark = pytest.mark.e2e
LAYER = os.urandom(300_000)
HEX = sha256(LAYER).split(":")[1]


@pytest.fixture(scope="module")
def bucket(s3_endpoint: S3Endpoint) -> str:
    return s3_endpoint.new_bucket()


class Bucket:
    """The objects under one prefix, as the S3 API lists them."""

    def __init__(self, endpoint: S3Endpoint, bucket: str) -> None:
        self.name = bucket
        self.prefix = f"p-{uuid.uuid4().hex[:10]}"
        self.endpoint = endpoint
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def sizes(self) -> dict[str, int]:
        """Every object's size, by its path under the prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=self.prefix + "/"
        )
        return {
            entry["Key"][len(self.prefix) + 1 :]: entry["Size"]
            for page in pages
            for entry in page.get("Contents", [])
        }

    def copies(self, data: bytes) -> list[str]:
        """The objects holding ``data``'s bytes (by size: the layer's is unique here)."""
        return sorted(path for path, size in self.sizes().items() if size == len(data))

    def config(self, **root: Any) -> dict[str, Any]:
        driver = self.endpoint.driver_config(self.name, rootdirectory=self.prefix)
        return {"storage": {"storageDriver": driver, "dedupe": True, **root}}


@pytest.fixture
def store(s3_endpoint: S3Endpoint, bucket: str) -> Bucket:
    return Bucket(s3_endpoint, bucket)


@contextmanager
def serving(folder: Path, store: Bucket, **root: Any) -> Iterator[tuple[LiveServer, httpx.Client]]:
    with (
        live_server(folder, store.config(**root), env=ENV) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        _until(lambda: any("start-up cleanup done" in x for x in live.log_lines()), "started")
        yield live, client


def _until(done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not {what} in {timeout}s"
        time.sleep(0.1)


def _conversions(live: LiveServer) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in live.log_lines() if x.startswith("{")]
    return [line for line in lines if line.get("msg") == "dedupe conversion done"]


def _reads_whole(client: httpx.Client, repo: str, data: bytes) -> None:
    """GET, HEAD and a Range of the blob in ``repo`` answer with its bytes and headers."""
    digest = sha256(data)
    got = client.get(f"/v2/{repo}/blobs/{digest}")
    assert got.status_code == 200, got.text
    assert got.content == data
    assert got.headers["Content-Length"] == str(len(data))
    assert got.headers["Docker-Content-Digest"] == digest
    head = client.head(f"/v2/{repo}/blobs/{digest}")
    assert (head.status_code, head.headers["Content-Length"]) == (200, str(len(data)))
    part = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == data[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"


def test_a_blob_in_several_repositories_is_stored_once(tmp_path: Path, store: Bucket) -> None:
    with serving(tmp_path, store) as (_, client):
        push_blob(client, "d/one", LAYER)  # an upload: the content is stored
        push_blob(client, "d/two", LAYER)  # the same bytes uploaded again: a reference
        mounted = client.post(
            "/v2/d/three/blobs/uploads/", params={"mount": sha256(LAYER), "from": "d/one"}
        )
        assert mounted.status_code == 201, mounted.text
        sizes = store.sizes()
        assert store.copies(LAYER) == [f".ocireg/blobs/sha256/{HEX}"]
        for repo in ("d/one", "d/two", "d/three"):
            assert sizes[f"{repo}/blobs/sha256/{HEX}"] == 0  # a placeholder
            _reads_whole(client, repo, LAYER)
        # nothing of the uploads is left behind
        assert not [path for path in sizes if "/.uploads/" in path]


def test_gc_drops_one_reference_at_a_time(tmp_path: Path, store: Bucket) -> None:
    # gcDelay: long enough that a loaded machine pushes a manifest before GC may take its
    # blobs (pushed first, unreferenced until then), short enough to wait for
    with serving(tmp_path, store, gcDelay="6s", gcInterval="300ms") as (_, client):
        for repo in ("g/one", "g/two"):
            put_manifest(client, repo, "v1", image_manifest(client, repo, [LAYER]))
        content = f".ocireg/blobs/sha256/{HEX}"
        # g/one lets go of the image: after gcDelay GC removes its placeholder only
        assert client.delete("/v2/g/one/manifests/v1").status_code == 202
        _until(lambda: f"g/one/blobs/sha256/{HEX}" not in store.sizes(), "collected in g/one")
        assert client.get(f"/v2/g/one/blobs/{sha256(LAYER)}").status_code == 404
        assert store.copies(LAYER) == [content]
        _reads_whole(client, "g/two", LAYER)
        # and once no repository references it, the content goes
        assert client.delete("/v2/g/two/manifests/v1").status_code == 202
        _until(lambda: content not in store.sizes(), "content removed")
        assert client.get(f"/v2/g/two/blobs/{sha256(LAYER)}").status_code == 404


def test_gc_keeps_content_younger_than_gc_delay(tmp_path: Path, store: Bucket) -> None:
    with serving(tmp_path, store, gcDelay="1h", gcInterval="300ms") as (live, client):
        push_blob(client, "y/one", LAYER)  # referenced by no manifest, but new
        before = len([x for x in live.log_lines() if '"gc done"' in x])
        _until(
            lambda: len([x for x in live.log_lines() if '"gc done"' in x]) > before + 2,
            "three GC rounds",
        )
        assert store.sizes()[f"y/one/blobs/sha256/{HEX}"] == 0
        _reads_whole(client, "y/one", LAYER)


def test_switching_dedupe_converts_the_bucket_once(tmp_path: Path, store: Bucket) -> None:
    repos = ("c/one", "c/two")
    with serving(tmp_path / "off", store, dedupe=False) as (live, client):
        for repo in repos:
            put_manifest(client, repo, "v1", image_manifest(client, repo, [LAYER]))
        _until(lambda: bool(_conversions(live)), "recorded")
        assert store.copies(LAYER) == [f"{repo}/blobs/sha256/{HEX}" for repo in repos]
    with serving(tmp_path / "on", store) as (live, client):
        _until(lambda: bool(_conversions(live)), "converted on")
        assert _conversions(live)[0]["blobs"] >= 2
        assert store.copies(LAYER) == [f".ocireg/blobs/sha256/{HEX}"]
        for repo in repos:
            assert store.sizes()[f"{repo}/blobs/sha256/{HEX}"] == 0
            _reads_whole(client, repo, LAYER)
    with serving(tmp_path / "again", store) as (live, client):
        time.sleep(1)
        assert not _conversions(live)  # recorded once: nothing to do at the next start
    with serving(tmp_path / "back", store, dedupe=False) as (live, client):
        _until(lambda: bool(_conversions(live)), "converted off")
        assert store.copies(LAYER) == [f"{repo}/blobs/sha256/{HEX}" for repo in repos]
        assert not [path for path in store.sizes() if path.startswith(".ocireg/blobs/")]
        for repo in repos:
            _reads_whole(client, repo, LAYER)


def test_gc_collects_a_placeholder_whose_content_is_gone(tmp_path: Path, store: Bucket) -> None:
    data = os.urandom(1000)  # content of its own, stored once
    digest = sha256(data)
    placeholder = f"lost/one/blobs/sha256/{digest.split(':')[1]}"
    with serving(tmp_path / "before", store) as (_, client):
        push_blob(client, "lost/one", data)
    assert store.sizes()[placeholder] == 0
    content = f"{store.prefix}/.ocireg/blobs/sha256/{digest.split(':')[1]}"
    store.client.delete_object(Bucket=store.name, Key=content)  # lost outside the registry
    # a registry that never saw the content (one that knew its size would not look)
    with serving(tmp_path / "after", store, gcDelay="2s", gcInterval="300ms") as (_, client):
        assert client.get(f"/v2/lost/one/blobs/{digest}").status_code == 404  # never empty
        _until(lambda: placeholder not in store.sizes(), "the placeholder collected")
        assert client.head(f"/v2/lost/one/blobs/{digest}").status_code == 404
        # pushed again, the blob is whole again
        push_blob(client, "lost/one", data)
        assert client.get(f"/v2/lost/one/blobs/{digest}").content == data
