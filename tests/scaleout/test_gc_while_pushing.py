"""GC on one instance while two others push, all on one bucket and one database: nothing a
tagged manifest references is ever lost, and the window between a blob's upload and the
manifest that uses it is exactly ``gcDelay`` (pushing a blob again, or mounting it, restarts
it). GC and manifest pushes serialise on the repository's advisory lock in PostgreSQL."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.liveserver import LiveServer
from tests.oci import (
    OCI_MANIFEST,
    canonical,
    error_codes,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)
from tests.scaleout.instances import Shared, clients, instance, instances

pytestmark = pytest.mark.e2e
THREADS = 2  # per pushing instance
DELAY = 8.0  # gcDelay, seconds: room for a busy machine's pauses between blob and manifest
UNTAGGED = "1s"  # retention.delay: untagged manifests go (and their blobs, DELAY later)
IMAGES = 6  # per thread, half a second apart at least: over several GC rounds
ATTEMPTS = 3
ACCEPT = {"Accept": OCI_MANIFEST}


def _gc_rounds(server: LiveServer, repo: str | None = None) -> list[dict[str, Any]]:
    """The instance's ``gc done`` log lines (one per repository per round), with their time."""
    rounds = []
    for line in server.log_events():
        if line.get("msg") == "gc done" and repo in (None, line["repo"]):
            line["at"] = datetime.fromisoformat(line["time"]).timestamp()
            rounds.append(line)
    return rounds


def _wait_for_round(server: LiveServer, repo: str, after: float, timeout: float = 60) -> None:
    """Until GC finished a round of ``repo`` that began after ``after`` (wall-clock)."""
    deadline = time.monotonic() + timeout
    while not any(r["at"] > after + 1.5 for r in _gc_rounds(server, repo)):  # a round is short
        assert time.monotonic() < deadline, f"no GC round of {repo} after {after}"
        time.sleep(0.2)


def _push_within_delay(
    client: httpx.Client, repo: str, tag: str, layers: list[bytes]
) -> tuple[str, dict[str, Any]]:
    """Push an image (its blobs, then its manifest) as a client does, and its digest. A
    manifest may be refused (MANIFEST_BLOB_UNKNOWN) only when its first blob was pushed more
    than ``gcDelay`` before the answer came (a busy machine can take that long): then GC may
    have collected it, and the client pushes again, as clients do."""
    for _ in range(ATTEMPTS):
        began = time.time()
        document = image_manifest(client, repo, layers=layers, config=layers[-1] + b"{}")
        answer = client.put(
            f"/v2/{repo}/manifests/{tag}",
            content=canonical(document),
            headers={"Content-Type": OCI_MANIFEST},
        )
        if answer.status_code == 201:
            return str(answer.headers["Docker-Content-Digest"]), document
        took = time.time() - began
        assert error_codes(answer) == ["MANIFEST_BLOB_UNKNOWN"], answer.text
        assert took > DELAY, f"a blob {took:.1f}s old was collected: {answer.text}"
    raise AssertionError(f"every push of {repo}:{tag} took longer than gcDelay")


def _intact(client: httpx.Client, repo: str, tag: str, digest: str) -> None:
    """The manifest and every blob it references pull whole."""
    got = client.get(
        f"/v2/{repo}/manifests/{tag}",
        headers=ACCEPT,
    )
    assert got.status_code == 200, (repo, tag, got.text)
    assert sha256(got.content) == digest
    document = got.json()
    for blob in [document["config"], *document["layers"]]:
        fetched = client.get(f"/v2/{repo}/blobs/{blob['digest']}")
        assert fetched.status_code == 200, (repo, tag, blob)
        assert sha256(fetched.content) == blob["digest"]


def test_gc_rounds_while_two_instances_push_lose_nothing_referenced(
    tmp_path: Path, shared: Shared
) -> None:
    every_tag = {"repositories": ["**"], "keepTags": [{"patterns": [".*"]}]}
    retention = {"delay": UNTAGGED, "policies": [every_tag]}
    collecting = shared.config(gc=True, gcInterval="1s", gcDelay=f"{DELAY:g}s", retention=retention)
    pushing = shared.config(gc=False)
    repos = ["gc/app0", "gc/app1"]
    with (
        instance(tmp_path / "gc", collecting) as collector,
        instances(tmp_path / "push", pushing, count=2) as pushers,
    ):
        pool = clients(pushers, timeout=120)

        def push(thread: int) -> list[tuple[str, str, str]]:
            """Images whose moving tag leaves the one before it untagged (garbage for GC),
            each on a base layer that every image of the repository shares (never garbage)."""
            client, repo = pool[thread % 2], repos[thread // 2 % 2]
            kept = []
            for k in range(IMAGES):
                base, own = f"base of {repo}".encode(), f"{thread}-{k}".encode()
                latest = f"latest-{thread}"
                digest, document = _push_within_delay(client, repo, latest, [base, own])
                if k % 2 == 0:  # every other image keeps a tag of its own
                    put_manifest(client, repo, f"t{thread}-{k}", document)
                    kept.append((repo, f"t{thread}-{k}", digest))
                time.sleep(0.5)  # spread the pushes over several GC rounds
            return [*kept, (repo, f"latest-{thread}", digest)]

        began = time.time()
        with ThreadPoolExecutor(2 * THREADS) as threads:
            tagged = [image for images in threads.map(push, range(2 * THREADS)) for image in images]
        ended = time.time()
        # GC did collect meanwhile: untagged images went while the pushes went on
        during = [r for r in _gc_rounds(collector) if began < r["at"] < ended]
        assert sum(len(r["manifests"]) for r in during) > 0, during
        for client in pool:
            for repo, tag, digest in tagged:
                _intact(client, repo, tag, digest)
        # and once everything untagged is old enough, a round after takes it all, and
        # still nothing referenced
        for repo in repos:
            _wait_for_round(collector, repo, after=ended + DELAY)
        assert sum(r["blobs"] for r in _gc_rounds(collector)) > 0  # the untagged images' own
        for client in pool:
            for repo, tag, digest in tagged:
                _intact(client, repo, tag, digest)
            for repo in repos:
                tags = client.get(f"/v2/{repo}/tags/list").json()["tags"]
                assert sorted(tags) == sorted(t for r, t, _ in tagged if r == repo)
        for client in pool:
            client.close()


def test_the_window_between_a_blob_and_its_manifest_is_gc_delay(
    tmp_path: Path, shared: Shared
) -> None:
    """A blob that no manifest references lives ``gcDelay`` from its last push, whichever
    instance collects: a manifest within that window is accepted; after it, GC has taken the
    blob and the manifest is refused (MANIFEST_BLOB_UNKNOWN), writing nothing; a blob pushed
    again (or mounted) starts its window again."""
    repo = "gc/window"
    collecting = shared.config(gc=True, gcInterval="1s", gcDelay=f"{DELAY:g}s")
    with (
        instance(tmp_path / "gc", collecting) as collector,
        instance(tmp_path / "push", shared.config(gc=False)) as pusher,
        httpx.Client(base_url=pusher.url, timeout=60) as client,
    ):
        # the repository must exist for GC to visit it; its tagged image is never touched
        kept = image_manifest(client, repo, layers=[b"kept"])
        put_manifest(client, repo, "kept", kept)
        in_time = image_manifest(client, repo, layers=[b"in time"])
        put_manifest(client, repo, "in-time", in_time)  # well within the window

        late = image_manifest(client, repo, layers=[b"late"], config=b'{"late":1}')
        renewed = image_manifest(client, repo, layers=[b"renewed"], config=b'{"renewed":1}')
        pushed = time.time()
        late_blob = late["layers"][0]["digest"]
        time.sleep(DELAY / 2)
        _wait_for_round(collector, repo, after=pushed)
        if time.time() - pushed < DELAY - 0.5:  # (a busy machine may have waited longer)
            assert client.head(f"/v2/{repo}/blobs/{late_blob}").status_code == 200  # young
        for blob in (b"renewed", b'{"renewed":1}'):
            push_blob(client, repo, blob)  # pushed again: a new window
        renewed_at = time.time()

        _wait_for_round(collector, repo, after=pushed + DELAY)
        assert time.time() - renewed_at < DELAY  # the renewed window is still open
        answer = client.put(
            f"/v2/{repo}/manifests/late",
            content=canonical(late),
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert answer.status_code == 404, answer.text  # as every refused reference here
        assert error_codes(answer) == ["MANIFEST_BLOB_UNKNOWN"]
        assert late_blob in answer.text
        put_manifest(client, repo, "renewed", renewed)

        tags = client.get(f"/v2/{repo}/tags/list").json()["tags"]
        assert sorted(tags) == ["in-time", "kept", "renewed"]
        _wait_for_round(collector, repo, after=time.time() + DELAY)
        for tag, document in (("kept", kept), ("in-time", in_time), ("renewed", renewed)):
            _intact(client, repo, tag, sha256(canonical(document)))
