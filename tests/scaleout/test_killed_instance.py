"""An instance SIGKILLed mid-push, beside two others on one bucket and one database: every push
it acknowledged (201) is intact through the others, nothing half-written is served (a chunk in
flight is not part of its upload; a listed tag always resolves to a whole image), and the
instance, started again, works and catches the meta DB up."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.liveserver import LiveServer
from tests.oci import canonical, image_manifest, put_manifest, sha256
from tests.scaleout.instances import Shared, clients, instance, instances, settled

pytestmark = pytest.mark.e2e
REPO = "killed/app"
MiB = 1 << 20
WRITERS = 8
SEARCH = "/v2/_zot/ext/search"
IMAGES = '{ ImageList(repo: "killed/app") { Results { Tag Digest } } }'


def _kill(server: LiveServer) -> None:
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait()


def _slow_body(sent: threading.Event) -> Iterator[bytes]:
    for _ in range(20):
        yield b"z" * MiB
        sent.set()
        time.sleep(0.3)


def _whole(client: httpx.Client, tag: str, digest: str) -> None:
    got = client.get(
        f"/v2/{REPO}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert got.status_code == 200, (tag, got.text)
    assert sha256(got.content) == digest
    for blob in [got.json()["config"], *got.json()["layers"]]:
        fetched = client.get(f"/v2/{REPO}/blobs/{blob['digest']}")
        assert sha256(fetched.content) == blob["digest"]


def test_an_instance_killed_mid_push_loses_no_acknowledged_push(
    tmp_path: Path, shared: Shared
) -> None:
    config = shared.config()
    with instances(tmp_path / "others", config, count=2) as others:
        survivors = clients(others)
        with instance(tmp_path / "victim", config) as victim:
            port = int(victim.url.rsplit(":", 1)[1])
            acknowledged = _kill_while_pushing(victim, survivors)

        b, c = survivors
        # the chunk in flight is not part of the upload: the session continues from where
        # it was before it, on another instance
        location, blob = acknowledged.pop("upload")
        status = b.get(location)
        assert status.status_code == 204, status.text
        assert status.headers.get("Range", "0-0") == "0-0"  # nothing stored yet
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        assert c.put(location, params={"digest": digest}, content=blob).status_code == 201
        assert hashlib.sha256(b.get(f"/v2/{REPO}/blobs/{digest}").content).digest() == (
            hashlib.sha256(blob).digest()
        )

        for client in survivors:
            listed = client.get(f"/v2/{REPO}/tags/list").json()["tags"]
            assert set(acknowledged) <= set(listed)
            for tag in listed:  # a listed tag is a whole image, acknowledged or not
                _whole(client, tag, acknowledged.get(tag) or _digest_of(client, tag))
            for tag, digest in acknowledged.items():
                _whole(client, tag, digest)

        with instance(tmp_path / "victim", config, port=port) as again:
            with httpx.Client(base_url=again.url, timeout=60) as restarted:
                document = image_manifest(restarted, REPO, layers=[b"after the restart"])
                digest = put_manifest(restarted, REPO, "after", document).headers[
                    "Docker-Content-Digest"
                ]
                _whole(restarted, "after", digest)
                listed = set(restarted.get(f"/v2/{REPO}/tags/list").json()["tags"])

            def images(client: httpx.Client) -> set[str]:
                found = client.post(SEARCH, json={"query": IMAGES}).json()
                return {i["Tag"] for i in found["data"]["ImageList"]["Results"]}

            # search catches up with every tag, those the killed instance had not recorded too
            for client in survivors:
                assert settled(lambda: images(client), lambda s: s == listed) == listed  # noqa: B023
        for client in survivors:
            client.close()


def _digest_of(client: httpx.Client, tag: str) -> str:
    head = client.head(
        f"/v2/{REPO}/manifests/{tag}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    return str(head.headers["Docker-Content-Digest"])


def _kill_while_pushing(victim: LiveServer, survivors: list[httpx.Client]) -> dict[str, Any]:
    """Tag pushes through ``victim`` from several writers, and one chunk streaming into an
    upload, when it is killed. Returns the tags it acknowledged (and the upload's location
    and the blob meant for it, under ``"upload"``)."""
    acknowledged: dict[str, Any] = {}
    documents = [image_manifest(survivors[0], REPO, layers=[b"%d" % k]) for k in range(WRITERS)]
    with httpx.Client(base_url=victim.url, timeout=60) as client:
        location = client.post(f"/v2/{REPO}/blobs/uploads/").headers["Location"]
        sent, stop = threading.Event(), threading.Event()

        def patch() -> None:
            headers = {"Content-Type": "application/octet-stream"}
            with contextlib.suppress(httpx.TransportError):  # killed under it
                client.patch(location, content=_slow_body(sent), headers=headers)

        def push(writer: int) -> None:
            body = canonical(documents[writer])
            for round_ in range(1000):
                if stop.is_set():
                    return
                tag = f"w{writer}-{round_}"
                try:
                    answer = client.put(
                        f"/v2/{REPO}/manifests/{tag}",
                        content=body,
                        headers={"Content-Type": documents[writer]["mediaType"]},
                    )
                except httpx.TransportError:
                    return
                if answer.status_code == 201:
                    acknowledged[tag] = answer.headers["Docker-Content-Digest"]

        with ThreadPoolExecutor(WRITERS + 1) as pool:
            pool.submit(patch)
            writers = [pool.submit(push, w) for w in range(WRITERS)]
            assert sent.wait(60)
            deadline = time.monotonic() + 60
            while len(acknowledged) < 2 * WRITERS and time.monotonic() < deadline:
                time.sleep(0.05)
            _kill(victim)
            stop.set()
            for future in writers:
                future.result()
    assert len(acknowledged) >= 2 * WRITERS
    acknowledged["upload"] = (location, b"whole blob " * 1000)
    return acknowledged
