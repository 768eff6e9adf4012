"""Journals: told of each change before it is committed (storage does not show it yet) and of
its outcome after, by the commit itself, whatever became of the request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

import pytest

from ocireg.errors import RegistryError
from ocireg.registry import layout
from ocireg.registry import mediatypes as mt
from ocireg.registry.journal import Change, Settle
from ocireg.storage.memory import MemoryDriver
from tests.registry.test_commits import REPO, _document
from tests.registry.world import World


class Recorder:
    """A journal that notes, for each change, what storage showed when told, and the outcome."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.told: list[tuple[Change, bool]] = []  # (change, whether storage showed it then)
        self.outcomes: list[tuple[str, tuple[str, ...], bool]] = []

    def __call__(self, change: Change) -> Settle:
        self.told.append((change, self._shows(change)))

        def settle(committed: bool) -> None:
            self.outcomes.append((change.kind, change.references, committed))

        return settle

    def _shows(self, change: Change) -> bool:
        index = self.world.registry.index(change.repo)
        if change.kind == "created":
            return index is not None
        tags = index.tags if index is not None else {}
        if change.kind == "pushed":
            return all(tag in tags for tag in change.references)
        return change.references[0] not in tags


def _journaled_world() -> tuple[World, Recorder]:
    world = World()
    recorder = Recorder(world)
    world.registry.journals.append(recorder)
    return world, recorder


def test_a_push_and_a_delete_are_told_before_and_settled_after() -> None:
    world, recorder = _journaled_world()
    document = _document(world, b"layer")  # creates the repository
    asyncio.run(world.registry.put_manifest(REPO, "v1", document, mt.OCI_MANIFEST, ["v2"]))
    asyncio.run(world.registry.delete_manifest(REPO, "v2"))
    assert [(change.kind, shown) for change, shown in recorder.told] == [
        ("created", False),
        ("pushed", False),
        ("removed", False),
    ]
    pushed = recorder.told[1][0]
    assert (pushed.references, pushed.manifest) == (("v1", "v2"), document)
    assert pushed.media_type == mt.OCI_MANIFEST and pushed.digest.startswith("sha256:")
    assert recorder.outcomes == [
        ("created", (), True),
        ("pushed", ("v1", "v2"), True),
        ("removed", ("v2",), True),
    ]


def test_a_cancelled_push_is_settled_by_its_batch() -> None:
    world, recorder = _journaled_world()
    documents = [_document(world, f"layer {n}".encode()) for n in range(2)]
    put = world.registry.put_manifest
    told = len(recorder.told)

    async def cancel_the_first() -> list[Any]:
        async with world.registry.locks.hold(REPO):
            tasks = [
                asyncio.ensure_future(put(REPO, f"v{n}", doc, None, []))
                for n, doc in enumerate(documents)
            ]
            # both intents written (off the loop), so both pushes are queued for the lock
            while len(recorder.told) < told + 2:
                await asyncio.sleep(0.01)
            for _ in range(5):
                await asyncio.sleep(0)
            tasks[0].cancel()
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)

    results = asyncio.run(cancel_the_first())
    assert isinstance(results[0], asyncio.CancelledError)
    # its client went, but its push landed: the journal hears it committed
    assert recorder.outcomes[-2:] == [("pushed", ("v0",), True), ("pushed", ("v1",), True)]


class Blocking(Recorder):
    """A recorder whose pushes wait for ``gate`` before writing (a lock held elsewhere)."""

    def __init__(self, world: World, kinds: tuple[str, ...] = ("pushed",)) -> None:
        super().__init__(world)
        self.kinds = kinds
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def __call__(self, change: Change) -> Settle:
        if change.kind in self.kinds:
            self.waiting.set()
            assert self.gate.wait(10)
        return super().__call__(change)


def _blocking_world() -> tuple[World, Blocking]:
    world = World()
    journal = Blocking(world)
    world.registry.journals.append(journal)
    return world, journal


def test_a_push_waiting_for_its_journal_does_not_stall_the_event_loop() -> None:
    world, journal = _blocking_world()
    document = _document(world, b"layer")

    async def push_while_the_loop_runs() -> None:
        push = asyncio.ensure_future(world.registry.put_manifest(REPO, "v1", document, None, []))
        while not journal.waiting.is_set():  # the loop turns while the journal waits
            await asyncio.sleep(0.01)
        assert not push.done()
        journal.gate.set()
        await asyncio.wait_for(push, 10)

    asyncio.run(push_while_the_loop_runs())
    assert journal.outcomes[-1] == ("pushed", ("v1",), True)
    assert "v1" in world.registry.index(REPO).tags  # type: ignore[union-attr]


def test_a_creation_and_a_delete_waiting_for_their_journal_do_not_stall_the_event_loop() -> None:
    world = World()
    journal = Blocking(world, kinds=("created", "removed"))
    journal.gate.set()
    world.registry.journals.append(journal)
    document = _document(world, b"layer")
    asyncio.run(world.registry.put_manifest(REPO, "v1", document, None, []))
    journal.gate.clear()

    async def while_the_loop_runs(change: Any) -> None:
        journal.waiting.clear()
        task = asyncio.ensure_future(change)
        while not journal.waiting.is_set():  # the loop turns while the journal waits
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert not task.done()
        journal.gate.set()
        await asyncio.wait_for(task, 10)
        journal.gate.clear()

    asyncio.run(while_the_loop_runs(world.registry.ensure_repository("other/repo")))
    asyncio.run(while_the_loop_runs(world.registry.delete_manifest(REPO, "v1")))
    assert journal.outcomes[-2:] == [("created", (), True), ("removed", ("v1",), True)]
    assert world.registry.index("other/repo") is not None
    assert "v1" not in world.registry.index(REPO).tags  # type: ignore[union-attr]


def test_a_push_cancelled_while_its_journal_writes_is_settled_as_not_committed() -> None:
    world, journal = _blocking_world()
    document = _document(world, b"layer")

    async def cancel_while_writing() -> None:
        push = asyncio.ensure_future(world.registry.put_manifest(REPO, "v1", document, None, []))
        while not journal.waiting.is_set():
            await asyncio.sleep(0.01)
        push.cancel()
        journal.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await push
        while len(journal.outcomes) < 2:  # settled in a thread
            await asyncio.sleep(0.01)

    asyncio.run(cancel_while_writing())
    assert journal.outcomes[-1] == ("pushed", ("v1",), False)
    index = world.registry.index(REPO)
    assert index is not None and "v1" not in index.tags


def test_a_failed_index_write_is_settled_as_not_committed() -> None:
    world, recorder = _journaled_world()
    document = _document(world, b"layer")
    driver = world.registry.driver
    assert isinstance(driver, MemoryDriver)
    original = driver.put_pieces

    def failing(path: str, pieces: Iterable[bytes]) -> None:
        if path == layout.index_file(REPO):
            raise OSError("disk full")
        original(path, pieces)

    driver.put_pieces = failing  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(world.registry.put_manifest(REPO, "v1", document, None, []))
    assert recorder.outcomes[-1] == ("pushed", ("v1",), False)


def test_a_delete_refused_before_its_commit_tells_no_journal() -> None:
    world, recorder = _journaled_world()
    document = _document(world, b"layer")
    asyncio.run(world.registry.put_manifest(REPO, "v1", document, None, []))
    told = len(recorder.told)
    with pytest.raises(RegistryError):
        asyncio.run(world.registry.delete_manifest(REPO, "v9"))  # no such tag
    assert len(recorder.told) == told
