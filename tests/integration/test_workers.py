"""Two worker processes on one storage root: nothing is lost to a race."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ocireg.registry.layout import REF_NAME
from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, put_manifest, sha256


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("workers"), {"http": {"workers": 2}}) as live:
        yield live


def test_concurrent_tag_pushes_lose_nothing(two_workers: LiveServer) -> None:
    repo = "race/tags"
    with httpx.Client(base_url=two_workers.url, timeout=60) as setup:
        document = image_manifest(setup, repo)
    tags = [f"tag-{i:03d}" for i in range(200)]

    def push(tag: str) -> int:
        # A fresh connection each time so the kernel spreads requests over both workers.
        with httpx.Client(base_url=two_workers.url, timeout=60) as client:
            return put_manifest(client, repo, tag, document).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(push, tags)) == {201}
    listed = httpx.get(f"{two_workers.url}/v2/{repo}/tags/list").json()["tags"]
    assert listed == tags
    pids = {line["pid"] for line in two_workers.log_events() if line["msg"] == "request"}
    assert len(pids) == 2, "both workers should have served requests"


def test_chunks_landing_on_different_workers(two_workers: LiveServer) -> None:
    data = os.urandom(2_000_000)
    repo = "race/chunks"
    with httpx.Client(base_url=two_workers.url) as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    for start in range(0, len(data), 250_000):
        chunk = data[start : start + 250_000]
        with httpx.Client(base_url=two_workers.url) as client:
            response = client.patch(
                location,
                content=chunk,
                headers={
                    "Content-Range": f"{start}-{start + len(chunk) - 1}",
                    "Content-Type": "application/octet-stream",
                },
            )
            assert response.status_code == 202, response.text
    with httpx.Client(base_url=two_workers.url) as client:
        done = client.put(location, params={"digest": sha256(data)})
        assert done.status_code == 201, done.text
        assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found: list[int] = []
    for task in tasks.iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _caught_signals(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(
        next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16
    )


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_workers_are_forked_from_the_parent_with_default_signal_handling(
    two_workers: LiveServer,
) -> None:
    """Forked, not spawned: they start with the parent's imports and checked spec instead of
    a new interpreter each (``bench/startup.py``); a worker still ends on SIGHUP as a
    spawned one did, where the parent only queues it."""
    parent = two_workers.process.pid
    workers = _children(parent)
    assert len(workers) == 2
    command = Path(f"/proc/{parent}/cmdline").read_bytes()
    hup = 1 << (signal.SIGHUP - 1)
    assert _caught_signals(parent) & hup
    for worker in workers:
        assert Path(f"/proc/{worker}/cmdline").read_bytes() == command
        assert not _caught_signals(worker) & hup


def test_index_json_is_whole_and_holds_every_answered_push_throughout_a_burst(
    two_workers: LiveServer,
) -> None:
    """While 16 clients push new tags through both workers, index.json on disk always
    parses as an OCI index that lists every tag already answered 201 (skopeo and zot read
    it directly), and at the end both workers list every tag."""
    repo = "race/burst"
    with httpx.Client(base_url=two_workers.url, timeout=60) as setup:
        document = image_manifest(setup, repo)
        put_manifest(setup, repo, "first", document)
    index_file = two_workers.root / repo / "index.json"
    tags = [f"b-{i:04d}" for i in range(400)]
    answered: set[str] = {"first"}
    stop = threading.Event()

    def push(tag: str) -> int:
        with httpx.Client(base_url=two_workers.url, timeout=60) as client:
            status = put_manifest(client, repo, tag, document).status_code
        answered.add(tag)
        return status

    def watch() -> int:
        reads = 0
        while not stop.is_set() or reads == 0:
            confirmed = set(answered)  # before the read: each of them must be in the file
            index = json.loads(index_file.read_bytes())
            assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
            listed = {m["annotations"][REF_NAME] for m in index["manifests"]}
            assert confirmed <= listed, sorted(confirmed - listed)[:5]
            reads += 1
        return reads

    with ThreadPoolExecutor(17) as pool:
        watcher = pool.submit(watch)
        assert set(pool.map(push, tags[:200])) == {201}
        assert set(pool.map(push, tags[200:])) == {201}
        stop.set()
        assert watcher.result() > 1
    on_disk = json.loads(index_file.read_bytes())["manifests"]
    assert sorted(m["annotations"][REF_NAME] for m in on_disk) == sorted(["first", *tags])
    for _ in range(6):  # fresh connections: both workers answer
        listed = httpx.get(f"{two_workers.url}/v2/{repo}/tags/list").json()["tags"]
        assert listed == sorted(["first", *tags])
