"""events written in the same step as the commit: the registry is SIGKILLed between an event's
intent and its settling (``tests.eventcrash`` kills it at that exact point), and after a
restart the event is delivered exactly when its change is in storage."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.eventcrash import CRASH_AT
from tests.eventsink import Received, Receiver
from tests.ext.test_events_faults import events_config
from tests.liveserver import live_server
from tests.oci import canonical, image_manifest, put_manifest

REPO = "crash/a"
UPDATED = "zotregistry.image.updated"
DELETED = "zotregistry.image.deleted"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver().start()
    yield made
    made.stop()


def seen(received: list[Received]) -> list[tuple[str, str]]:
    """(type, reference) of each event about REPO, each id once, in arrival order."""
    ids: set[str] = set()
    found = []
    for event in received:
        if event.data["name"] == REPO and event.id not in ids:
            ids.add(event.id)
            found.append((event.type, event.data.get("reference", "")))
    return found


def intents(root: Path) -> int:
    db = sqlite3.connect(root / ".ocireg" / "meta.db")
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM events_intents").fetchone()
    finally:
        db.close()
    return int(count)


def crash_during(client: httpx.Client, operation: str, body: bytes) -> None:
    """Push t1, or DELETE t0; the server dies on the way (no answer)."""
    with pytest.raises(httpx.TransportError):
        if operation == "push":
            client.put(
                f"/v2/{REPO}/manifests/t1",
                content=body,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
        else:
            client.delete(f"/v2/{REPO}/manifests/t0")


@pytest.mark.parametrize(
    ("operation", "point", "happened"),
    [
        ("push", "committed", True),
        ("push", "intended", False),
        ("delete", "committed", True),
        ("delete", "intended", False),
    ],
)
def test_a_crash_between_intent_and_settling_delivers_exactly_what_happened(
    tmp_path: Path, receiver: Receiver, operation: str, point: str, happened: bool
) -> None:
    config = events_config(receiver)
    with live_server(tmp_path, config) as server:
        with httpx.Client(base_url=server.url) as client:
            document = image_manifest(client, REPO)
            put_manifest(client, REPO, "t0", document)
        receiver.wait_for(lambda r: (UPDATED, "t0") in seen(r))
    body = canonical(document)
    crashing = {CRASH_AT: point}
    with live_server(tmp_path, config, env=crashing, module="tests.eventcrash") as server:
        with httpx.Client(base_url=server.url) as client:
            crash_during(client, operation, body)
        server.process.wait(timeout=10)  # it killed itself
        assert server.process.returncode == -signal.SIGKILL
        assert intents(server.root) >= 1  # left unsettled
    with live_server(tmp_path, config) as server:
        with httpx.Client(base_url=server.url) as client:
            tag = "t1" if operation == "push" else "t0"
            present = client.head(f"/v2/{REPO}/manifests/{tag}").status_code == 200
            assert present == (happened == (operation == "push"))  # storage as the crash left it
            put_manifest(client, REPO, "t2", document)  # a later event of the same repository
        got = receiver.wait_for(lambda r: (UPDATED, "t2") in seen(r))
        assert intents(server.root) == 0
    crashed = (UPDATED, "t1") if operation == "push" else (DELETED, "t0")
    expected = [("zotregistry.repository.created", ""), (UPDATED, "t0")]
    expected += [crashed] if happened else []
    assert seen(got) == [*expected, (UPDATED, "t2")]


def test_a_live_process_keeps_its_own_intents(tmp_path: Path, receiver: Receiver) -> None:
    """Start-up settles only a dead process's intents: a sibling's commit in flight is its own
    (here an intent this test process owns stays, and holds its repository's events back)."""
    from ocireg.ext.events.reconcile import check, process_identity
    from ocireg.ext.events.store import Outbox, Stored

    config = events_config(receiver)
    with live_server(tmp_path, config) as server:
        with httpx.Client(base_url=server.url) as client:
            document = image_manifest(client, REPO)
            put_manifest(client, REPO, "t0", document)
        receiver.wait_for(lambda r: (UPDATED, "t0") in seen(r))
    outbox = Outbox(server.root / ".ocireg" / "meta.db")
    event = Stored("held", REPO, UPDATED, "2026-01-01T00:00:00Z", '{"name": "crash/a"}')
    sinks = [f"http:{receiver.url}"]  # the sink's key (see ext/events/sinkset.py)
    (seq,) = outbox.intend([(event, sinks, check("pushed", "t9", "sha256:" + "0" * 64))],
                           process_identity(os.getpid()))  # fmt: skip
    with live_server(tmp_path, config) as server:
        with httpx.Client(base_url=server.url) as client:
            put_manifest(client, REPO, "t1", document)
        # the later event waits behind the intent of a live owner
        with pytest.raises(AssertionError):
            receiver.wait_for(lambda r: (UPDATED, "t1") in seen(r), timeout=3)
        assert intents(server.root) == 1
        outbox.confirm([seq])  # the owner settles it: both go, in order
        got = receiver.wait_for(lambda r: (UPDATED, "t1") in seen(r))
    outbox.close()
    assert seen(got)[-2:] == [(UPDATED, ""), (UPDATED, "t1")]
