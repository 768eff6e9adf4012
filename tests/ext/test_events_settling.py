"""How the producer settles the intents of its own process: confirmations of a burst of
commits share transactions, a confirmation that failed is tried again by the periodic settling,
an intent whose settling failed is settled against storage by it, and an intent whose commit
is still in flight is left alone (the crash paths are in test_events_reconcile.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ocireg.ext.events import production
from ocireg.ext.events.production import Producer
from ocireg.ext.events.settings import Sink
from ocireg.ext.events.sinkset import targets
from ocireg.ext.events.store import Outbox
from ocireg.registry.journal import Change, intend_off_loop
from tests.oci import image_manifest, put_manifest

# The producer looks for the request it serves (none here) through the server stack, whose
# imports warn on this Starlette and jsonschema.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient."),
]

DIGEST = "sha256:" + "a" * 64


class Storage:
    """Registries as the reconciler reads them: each repository's tags."""

    def __init__(self) -> None:
        self.tags: dict[str, dict[str, Any]] = {}

    def of(self, repo: str) -> Any:
        return self

    def index(self, repo: str) -> Any:
        return SimpleNamespace(tags=self.tags, by_digest={})


@pytest.fixture
def outbox(tmp_path: Path) -> Any:
    made = Outbox(tmp_path / "meta.db")
    yield made
    made.close()


def producer(outbox: Outbox, storage: Storage) -> Producer:
    sinks = targets([Sink(type="http", address="http://127.0.0.1:9/events")])
    return Producer(outbox, sinks, "zotregistry", storage)  # type: ignore[arg-type]


def pushed(tag: str) -> Change:
    return Change("pushed", "a/b", DIGEST, "application/vnd.oci.image.manifest.v1+json", (tag,))


def test_confirmations_of_a_burst_share_transactions(outbox: Outbox) -> None:
    made = producer(outbox, Storage())
    confirmed: list[list[int]] = []
    confirm = outbox.confirm

    def counting(seqs: list[int]) -> None:
        confirmed.append(list(seqs))
        confirm(seqs)

    outbox.confirm = counting  # type: ignore[method-assign]

    async def burst() -> None:
        settles = [made.journal(pushed(f"t{n}")) for n in range(50)]
        for settle in settles:
            assert settle is not None
            settle(True)  # as the commit batches do, on the loop
        for _ in range(200):
            if not outbox.intents():
                return
            await asyncio.sleep(0.01)

    asyncio.run(burst())
    assert outbox.intents() == []
    assert sorted(seq for seqs in confirmed for seq in seqs) == list(range(1, 51))
    assert len(confirmed) < 50


def test_a_confirmation_goes_with_the_next_pushs_intent(outbox: Outbox) -> None:
    made = producer(outbox, Storage())
    confirmed: list[list[int]] = []
    confirm = outbox.confirm

    def counting(seqs: list[int]) -> None:
        confirmed.append(list(seqs))
        confirm(seqs)

    outbox.confirm = counting  # type: ignore[method-assign]

    async def two_pushes() -> tuple[list[int], list[int]]:
        first = made.journal(pushed("t1"))
        assert first is not None
        first(True)  # committed: its confirmation waits for the next intent
        held = [intent.seq for intent in outbox.intents()]
        second = made.journal(pushed("t2"))  # writes the first's confirmation too
        after = [intent.seq for intent in outbox.intents()]
        assert second is not None
        second(True)
        for _ in range(200):  # no push follows: the confirmer writes the second's
            if not outbox.intents():
                break
            await asyncio.sleep(0.01)
        return held, after

    held, after = asyncio.run(two_pushes())
    assert (held, after) == ([1], [2])
    assert confirmed == [[2]]  # only the last one needed a transaction of its own
    assert outbox.intents() == []


def test_a_failed_confirmation_is_tried_again_by_the_periodic_settling(outbox: Outbox) -> None:
    made = producer(outbox, Storage())
    confirm = outbox.confirm
    failures = [RuntimeError("database is locked")]

    def failing_once(seqs: list[int]) -> None:
        if failures:
            raise failures.pop()
        confirm(seqs)

    outbox.confirm = failing_once  # type: ignore[method-assign]
    settle = made.journal(pushed("t0"))
    assert settle is not None
    settle(True)  # outside a loop: confirmed at once, and that fails
    assert len(outbox.intents()) == 1  # held back
    made.settle_stale()
    assert outbox.intents() == []
    assert outbox.figures()["http:http://127.0.0.1:9/events"].queued == 1  # the event goes


def test_intents_left_by_a_failed_settling_are_settled_against_storage(
    outbox: Outbox,
) -> None:
    storage = Storage()
    made = producer(outbox, storage)
    happened, not_happened = made.journal(pushed("t0")), made.journal(pushed("t1"))
    assert happened is not None and not_happened is not None
    confirm, drop = outbox.confirm, outbox.drop

    def broken(seqs: list[int]) -> None:
        raise RuntimeError("disk I/O error")

    outbox.confirm = outbox.drop = broken  # type: ignore[method-assign]
    storage.tags["t0"] = {"digest": DIGEST}  # both commits raised, yet t0 is in storage
    for settle in (happened, not_happened):
        with pytest.raises(RuntimeError):
            settle(False)
    assert len(outbox.intents()) == 2  # held back
    outbox.confirm, outbox.drop = confirm, drop  # type: ignore[method-assign]
    assert made.settle_stale() == 2
    assert outbox.intents() == []
    assert outbox.figures()["http:http://127.0.0.1:9/events"].queued == 1  # t0's event only


def test_an_intent_in_flight_is_left_to_its_commit(outbox: Outbox) -> None:
    made = producer(outbox, Storage())
    settle = made.journal(pushed("t0"))
    assert settle is not None
    assert made.settle_stale() == 0  # t0 is not in storage, but its commit is not over
    assert len(outbox.intents()) == 1
    settle(True)
    assert outbox.intents() == []


def test_an_intent_being_confirmed_is_not_taken_for_stale(outbox: Outbox) -> None:
    # The periodic settling runs in the scheduler's thread while the confirmer writes: an
    # intent taken by the confirmer and not yet written is neither stale nor dropped, even
    # when storage no longer shows its change (its tag has moved on since).
    made = producer(outbox, Storage())
    confirm = outbox.confirm
    settled: list[int] = []

    def settling_meanwhile(seqs: list[int]) -> None:
        settled.append(made.settle_stale())
        confirm(seqs)

    outbox.confirm = settling_meanwhile  # type: ignore[method-assign]
    settle = made.journal(pushed("t0"))
    assert settle is not None
    settle(True)  # outside a loop: confirmed at once
    assert settled == [0]
    assert outbox.intents() == []
    assert outbox.figures()["http:http://127.0.0.1:9/events"].queued == 1


def test_an_intent_written_on_the_loop_and_in_flight_is_left_to_its_commit(
    outbox: Outbox,
) -> None:
    """As above, for a push whose intent the event loop wrote (see GroupWriter._inline): the
    periodic settling, in its thread, leaves it alone until its commit settles it."""
    from ocireg.registry.journal import intend_off_loop

    made = producer(outbox, Storage())

    async def push_then_settle_meanwhile() -> int:
        settle = await intend_off_loop([made], pushed("t0"))
        assert settle is not None
        assert made._writer._thread is None  # written on the loop, not by the thread
        stale = await asyncio.to_thread(made.settle_stale)
        assert len(outbox.intents()) == 1  # t0 is not in storage, but its commit is not over
        settle(True)
        for _ in range(500):  # confirmed CONFIRM_DELAY later, by the writer thread
            if not outbox.intents():
                break
            await asyncio.sleep(0.01)
        return stale

    assert asyncio.run(push_then_settle_meanwhile()) == 0
    assert outbox.intents() == []
    assert outbox.figures()["http:http://127.0.0.1:9/events"].queued == 1
    made.close()


def test_shutdown_writes_the_confirmations_still_waiting(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(production, "CONFIRM_DELAY", 60.0)  # no push, no timer takes them
    made = producer(outbox, Storage())
    made._writer._try_write = None  # the intent written by the writer thread, not on the loop

    async def committed() -> None:
        settle = await intend_off_loop([made], pushed("v1"))
        assert settle is not None
        settle(True)

    asyncio.run(committed())
    assert len(outbox.intents()) == 1  # committed, its confirmation waiting
    assert made._writer._thread is not None
    made.shutdown()
    assert outbox.intents() == []
    assert made._writer._thread is None  # the group writer's thread has ended


def test_a_confirmation_timer_that_fires_after_shutdown_starts_no_thread(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(production, "CONFIRM_DELAY", 0.05)
    made = producer(outbox, Storage())
    made._writer._try_write = None

    async def committed_then_stopped() -> None:
        settle = await intend_off_loop([made], pushed("v1"))
        assert settle is not None
        settle(True)  # its timer fires CONFIRM_DELAY later, after the shutdown
        await asyncio.to_thread(made.shutdown)
        await asyncio.sleep(0.2)

    asyncio.run(committed_then_stopped())
    assert outbox.intents() == []
    assert made._writer._thread is None


def test_a_registry_stopped_right_after_a_push_leaves_no_intent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry's own shutdown (the ASGI lifespan) writes the waiting confirmations: the
    next start-up has nothing of its own to settle against storage."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # connexion's imports; not ours to fix
        from starlette.testclient import TestClient

        from ocireg.app import create_app
        from ocireg.config import Config

    monkeypatch.setattr(production, "CONFIRM_DELAY", 60.0)
    sinks = [{"type": "http", "address": "http://127.0.0.1:9/events"}]  # nobody listens
    config = Config.model_validate(
        {"storage": {"rootDirectory": str(tmp_path)}, "extensions": {"events": {"sinks": sinks}}}
    )
    with TestClient(create_app(config)) as client:
        put_manifest(client, "stop/a", "v1", image_manifest(client, "stop/a"))
    db = sqlite3.connect(tmp_path / ".ocireg" / "meta.db")
    try:
        (intents,) = db.execute("SELECT count(*) FROM events_intents").fetchone()
        (events,) = db.execute("SELECT count(*) FROM events_outbox").fetchone()
    finally:
        db.close()
    assert (intents, events) == (0, 2)  # repository.created and image.updated, confirmed
