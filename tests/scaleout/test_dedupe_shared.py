"""Dedupe by reference across instances: two instances push images that share one layer into
several repositories while a third collects garbage, on one bucket and one PostgreSQL meta DB
(which holds the references). Nothing referenced is lost, the shared layer is stored once,
and it goes only when no repository references it any more."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from tests.oci import put_manifest, sha256
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY
from tests.scaleout.instances import Shared, clients, instance, instances
from tests.scaleout.test_gc_while_pushing import (
    DELAY,
    _intact,
    _push_within_delay,
    _wait_for_round,
)

pytestmark = pytest.mark.e2e
SHARED = os.urandom(123_457)  # a size no other object here has
IMAGES = 4  # per repository


def _sizes(shared: Shared) -> dict[str, int]:
    """Every object's size under the test's prefix, through the S3 API."""
    client = boto3.client(
        "s3",
        endpoint_url=shared.endpoint.url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=shared.bucket, Prefix=shared.prefix + "/"
    )
    return {
        entry["Key"][len(shared.prefix) + 1 :]: entry["Size"]
        for page in pages
        for entry in page.get("Contents", [])
    }


def _copies(shared: Shared, size: int) -> list[str]:
    """The objects of ``size`` bytes under the test's prefix."""
    return sorted(path for path, length in _sizes(shared).items() if length == size)


def _until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60 + DELAY
    while not done():
        assert time.monotonic() < deadline, f"not {what}"
        time.sleep(0.5)


def test_a_layer_shared_by_repositories_on_two_instances_survives_gc_stored_once(
    tmp_path: Path, shared: Shared
) -> None:
    every_tag = {"repositories": ["**"], "keepTags": [{"patterns": [".*"]}]}
    retention = {"delay": "1s", "policies": [every_tag]}
    collecting = shared.config(gc=True, gcInterval="1s", gcDelay=f"{DELAY:g}s", retention=retention)
    repos = [f"dd/app{k}" for k in range(4)]
    content = f".ocireg/blobs/sha256/{sha256(SHARED).split(':')[1]}"
    with (
        instance(tmp_path / "gc", collecting) as collector,
        instances(tmp_path / "push", shared.config(gc=False), count=2) as pushers,
    ):
        pool = clients(pushers, timeout=120)

        def push(k: int) -> list[tuple[str, str, str]]:
            """Images on the shared layer; each moves ``latest`` (the one before goes
            untagged: garbage) and every other one keeps a tag."""
            client, repo, kept = pool[k % 2], repos[k], []
            for n in range(IMAGES):
                layers = [SHARED, f"{repo} {n}".encode()]
                digest, document = _push_within_delay(client, repo, "latest", layers)
                if n % 2 == 0:
                    put_manifest(client, repo, f"t{n}", document)
                    kept.append((repo, f"t{n}", digest))
                time.sleep(0.5)
            return [*kept, (repo, "latest", digest)]

        with ThreadPoolExecutor(len(repos)) as threads:
            tagged = [image for images in threads.map(push, range(len(repos))) for image in images]
        ended = time.time()
        assert _copies(shared, len(SHARED)) == [content]
        for repo in repos:
            _wait_for_round(collector, repo, after=ended + DELAY)
        for client in pool:
            for repo, tag, digest in tagged:
                _intact(client, repo, tag, digest)
        assert _copies(shared, len(SHARED)) == [content]

        # every repository but the last lets go of its images: the layer stays for that one
        first = pool[0]
        for repo, _, digest in tagged:
            if repo != repos[-1]:
                assert first.delete(f"/v2/{repo}/manifests/{digest}").status_code in (202, 404)
        placeholders = [f"{repo}/blobs/{sha256(SHARED).replace(':', '/')}" for repo in repos]
        _until(lambda: not set(placeholders[:-1]) & set(_sizes(shared)), "collected")
        assert _sizes(shared)[placeholders[-1]] == 0
        assert _copies(shared, len(SHARED)) == [content]
        for client in pool:
            for repo, tag, digest in tagged:
                if repo == repos[-1]:
                    _intact(client, repo, tag, digest)

        # and when the last one lets go too, the content goes
        for repo, _, digest in tagged:
            if repo == repos[-1]:
                assert first.delete(f"/v2/{repo}/manifests/{digest}").status_code in (202, 404)
        _until(lambda: not _copies(shared, len(SHARED)), "the content removed")
        assert not set(placeholders) & set(_sizes(shared))
        for client in pool:
            client.close()
