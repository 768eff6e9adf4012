"""events under faults: the receiver down for a while, the registry SIGKILLed with events
queued, a receiver that does not answer. Every event arrives, in order per repository, and
pushes do not wait for delivery."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.eventsink import Received, Receiver
from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, put_manifest

UPDATED = "zotregistry.image.updated"


def events_config(receiver: Receiver, timeout: str = "2s") -> dict[str, Any]:
    sink = {"type": "http", "address": receiver.url, "timeout": timeout}
    return {"extensions": {"events": {"sinks": [sink]}}}


def push_tags(client: httpx.Client, repos: list[str], count: int) -> None:
    """``count`` tags in each repository, interleaved across them."""
    documents = {repo: image_manifest(client, repo) for repo in repos}
    for number in range(count):
        for repo in repos:
            put_manifest(client, repo, f"t{number}", documents[repo])


def references(received: list[Received], repo: str) -> list[str]:
    """The tags of ``repo``'s image.updated events, each id once, in arrival order."""
    seen: set[str] = set()
    found = []
    for event in received:
        if event.type == UPDATED and event.data["name"] == repo and event.id not in seen:
            seen.add(event.id)
            found.append(event.data["reference"])
    return found


def queued(root: Path) -> int:
    db = sqlite3.connect(root / ".ocireg" / "meta.db")
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM events_pending").fetchone()
    finally:
        db.close()
    return int(count)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.stop()


def test_a_receiver_down_then_back_gets_every_event_in_order_per_repository(
    tmp_path: Path, receiver: Receiver
) -> None:
    repos = ["down/a", "down/b"]
    expected = [f"t{n}" for n in range(8)]
    with live_server(tmp_path, events_config(receiver)) as server:
        with httpx.Client(base_url=server.url) as client:
            push_tags(client, repos, len(expected))  # nobody listens yet
        assert queued(server.root) == 2 * (len(expected) + 1)
        receiver.start()
        got = receiver.wait_for(
            lambda r: all(len(references(r, repo)) == len(expected) for repo in repos),
            timeout=60,
        )
    for repo in repos:
        assert references(got, repo) == expected
        types = [e.type for e in got if e.data["name"] == repo]
        assert types[0] == "zotregistry.repository.created"


def test_events_queued_when_the_registry_is_sigkilled_are_sent_after_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    expected = [f"t{n}" for n in range(5)]
    config = events_config(receiver)
    with live_server(tmp_path, config) as server:
        with httpx.Client(base_url=server.url) as client:
            push_tags(client, ["killed/a"], len(expected))
        assert queued(server.root) == len(expected) + 1
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
    receiver.start()
    with live_server(tmp_path, config):
        got = receiver.wait_for(lambda r: len(references(r, "killed/a")) == len(expected))
    assert references(got, "killed/a") == expected
    ids = [event.id for event in got]
    assert len(set(ids)) == len(expected) + 1


def test_a_receiver_that_does_not_answer_does_not_hold_pushes(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.gate = threading.Event()  # every delivery hangs until the test opens the gate
    receiver.start()
    expected = [f"t{n}" for n in range(6)]
    repos = ["slow/a", "slow/b"]
    with live_server(tmp_path, events_config(receiver, timeout="1s")) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            push_tags(client, repos, len(expected))
            # every push was answered while not one delivery was
            assert receiver.events() == []
            assert client.get("/v2/slow/b/tags/list").json()["tags"] == sorted(expected)
        receiver.gate.set()
        got = receiver.wait_for(
            lambda r: all(
                len(references(r, repo)) == len(expected) for repo in ("slow/a", "slow/b")
            ),
            timeout=60,
        )
    for repo in repos:
        assert references(got, repo) == expected


def test_two_worker_processes_deliver_once_each_in_order(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.start()
    config = events_config(receiver)
    config["http"] = {"workers": 2}
    expected = [f"t{n}" for n in range(20)]  # on one worker only with odds of 2 in 2**20
    with live_server(tmp_path, config) as server:
        document = None
        for tag in expected:  # a fresh connection each: both workers take pushes
            with httpx.Client(base_url=server.url) as client:
                document = document or image_manifest(client, "workers/a")
                put_manifest(client, "workers/a", tag, document)
        got = receiver.wait_for(lambda r: len(references(r, "workers/a")) == len(expected))
        pushers = {
            line["pid"]
            for line in server.log_events()
            if line.get("msg") == "request" and line.get("method") == "PUT"
        }
    assert references(got, "workers/a") == expected
    assert len(pushers) == 2  # both workers wrote to the outbox
    assert len({event.id for event in got}) == len(got)  # nothing sent twice here


def sender_processes(server: LiveServer) -> list[int]:
    """The pids of the server's events sender processes (in its process group)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            group = os.getpgid(int(entry.name))
        except (OSError, ProcessLookupError):
            continue
        if group == server.process.pid and b"ocireg.ext.events.process" in command:
            found.append(int(entry.name))
    return found


def test_a_sender_process_that_dies_is_replaced_and_delivers(
    tmp_path: Path, receiver: Receiver
) -> None:
    with live_server(tmp_path, events_config(receiver)) as server:
        with httpx.Client(base_url=server.url) as client:
            push_tags(client, ["replaced/a"], 3)
        (sender,) = sender_processes(server)
        os.kill(sender, signal.SIGKILL)
        receiver.start()
        got = receiver.wait_for(lambda r: len(references(r, "replaced/a")) == 3)
        (again,) = sender_processes(server)
        ended = [
            line
            for line in server.log_events()
            if line.get("msg") == "events sender process ended; starting another"
        ]
    assert again != sender
    assert ended[0]["returncode"] == -signal.SIGKILL
    assert references(got, "replaced/a") == ["t0", "t1", "t2"]


def test_a_hung_sink_does_not_hold_up_another(tmp_path: Path, receiver: Receiver) -> None:
    hung = Receiver(gate=threading.Event()).start()
    receiver.start()
    sinks = [
        {"type": "http", "address": hung.url, "timeout": "30s"},
        {"type": "http", "address": receiver.url},
    ]
    try:
        with live_server(tmp_path, {"extensions": {"events": {"sinks": sinks}}}) as server:
            with httpx.Client(base_url=server.url) as client:
                push_tags(client, ["hung/a", "hung/b"], 3)
            got = receiver.wait_for(
                lambda r: all(len(references(r, repo)) == 3 for repo in ("hung/a", "hung/b"))
            )
            assert hung.events() == []  # still waiting on its first deliveries
    finally:
        assert hung.gate is not None
        hung.gate.set()
        hung.stop()
    assert references(got, "hung/a") == ["t0", "t1", "t2"]
