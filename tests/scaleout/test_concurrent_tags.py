"""Two instances on one bucket and one database, sixteen writers each, pushing tags to one
repository at once: repository locks are PostgreSQL advisory locks, so no tag is lost, and
each instance sees every tag, each on its own image."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oci import image_manifest, put_manifest
from tests.scaleout.instances import Shared, clients, instances, settled

pytestmark = pytest.mark.e2e
WRITERS = 16
REPO = "shared/tags"
SEARCH = "/v2/_zot/ext/search"
IMAGES = '{ ImageList(repo: "shared/tags") { Results { Tag Digest } } }'


def test_sixteen_writers_on_each_of_two_instances_lose_no_tag(
    tmp_path: Path, shared: Shared
) -> None:
    with instances(tmp_path, shared.config(), count=2) as servers:
        one, two = pool = clients(servers, timeout=120)
        try:
            tags = [f"{side}-{n}" for side in ("one", "two") for n in range(WRITERS)]

            def push(tag: str) -> tuple[str, str]:
                client = one if tag.startswith("one") else two
                # each writer its own image: blob uploads and the index.json edit interleave
                document = image_manifest(client, REPO, layers=[tag.encode()])
                answer = put_manifest(client, REPO, tag, document)
                return tag, answer.headers["Docker-Content-Digest"]

            with ThreadPoolExecutor(2 * WRITERS) as writers:
                pushed = dict(writers.map(push, tags))
            for client in pool:
                listed = client.get(f"/v2/{REPO}/tags/list").json()["tags"]
                assert sorted(listed) == sorted(tags)
                for tag, digest in pushed.items():
                    head = client.head(f"/v2/{REPO}/manifests/{tag}")
                    assert head.headers["Docker-Content-Digest"] == digest

            def images(client: httpx.Client) -> dict[str, Any]:
                found = client.post(SEARCH, json={"query": IMAGES}).json()
                return {i["Tag"]: i["Digest"] for i in found["data"]["ImageList"]["Results"]}

            for client in pool:
                assert settled(partial(images, client), lambda seen: seen == pushed) == pushed
        finally:
            for client in pool:
                client.close()
