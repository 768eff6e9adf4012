"""Two worker processes on one storage root: nothing is lost to a race."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

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
