"""GC of one repository, on the memory driver with a clock the test moves forward."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

from ocireg.digests import digest_bytes, parse_digest
from ocireg.registry import layout
from ocireg.registry import mediatypes as mt
from ocireg.registry.gc import Collected, GarbageCollector
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.manifestcache import ManifestCache
from ocireg.registry.store import Registry
from tests.registry.world import CONFIG, DELAY, World


def test_untagged_manifests_and_their_blobs_go_once_old() -> None:
    world = World()
    kept = world.image("r", b"kept-layer", "v1")
    world.image("r", b"old-layer", "v2")
    asyncio.run(world.registry.delete_manifest("r", "v2"))  # untag: v2's manifest is untagged
    assert world.collect("r").total == 0  # young: nothing goes yet
    world.later()
    result = world.collect("r")
    assert len(result.manifests) == 1 and len(result.blobs) == 2  # manifest + old layer
    assert world.manifests("r") == {kept["digest"]}
    assert str(digest_bytes(b"kept-layer")) in world.blobs("r")
    assert str(digest_bytes(b"old-layer")) not in world.blobs("r")
    assert str(digest_bytes(CONFIG)) in world.blobs("r")  # shared config stays


def test_unreferenced_blobs_only_when_old() -> None:
    world = World()
    world.blob("r", b"dangling")
    assert world.collect("r").blobs == []
    world.later()
    assert world.collect("r").blobs == [str(digest_bytes(b"dangling"))]


def test_index_children_and_referrers_of_present_subjects_stay() -> None:
    world = World()
    child = world.image("r", b"child", "sha256:")
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [child]}
    world.manifest("r", index, "multi")
    empty = world.blob("r", b"{}")
    empty["mediaType"] = mt.OCI_EMPTY
    referrer = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": empty,
        "layers": [world.blob("r", b"sbom")],
        "subject": child,
    }
    world.manifest("r", referrer, "sha256:")
    world.later()
    assert world.collect("r").total == 0
    # untag the index: it goes, then its child, then the child's referrer, in one run
    asyncio.run(world.registry.delete_manifest("r", "multi"))
    result = world.collect("r")
    assert len(result.manifests) == 3
    assert world.manifests("r") == set()
    assert world.blobs("r") == set()


def test_an_orphan_referrer_waits_for_its_subject_until_old() -> None:
    world = World()
    subject = {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + "f" * 64, "size": 10}
    empty = world.blob("r", b"{}")
    referrer = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {**empty, "mediaType": "application/vnd.example.sig"},
        "layers": [],
        "subject": subject,
    }
    pushed = world.manifest("r", referrer, "sha256:")
    assert world.collect("r").manifests == []  # the subject may still come
    world.later()
    assert world.collect("r").manifests == [pushed["digest"]]


def test_stale_uploads_go() -> None:
    world = World()
    asyncio.run(world.registry.ensure_repository("r"))
    session = asyncio.run(world.registry.uploads.start("r"))
    assert world.collect("r").uploads == []
    world.later()
    assert world.collect("r").uploads == [session]


def test_a_blob_mounted_or_pushed_again_looks_new() -> None:
    world = World()
    world.blob("src", b"shared")
    world.later()  # the source's copy is now old
    digest = digest_bytes(b"shared")
    assert asyncio.run(world.registry.mount_blob("dst", digest, ["src"]))
    assert world.collect("dst").blobs == []  # mounted just now: not collected
    world.blob("src", b"shared")  # pushed again: new again
    assert world.collect("src").blobs == []
    assert world.registry.has_blob("dst", parse_digest(str(digest)))


def test_a_manifest_that_cannot_be_read_keeps_every_blob() -> None:
    """Which blobs an unreadable manifest needs is unknown: GC removes none of them."""
    world = World()
    image = world.image("r", b"needed-layer", "v1")
    world.blob("r", b"dangling")
    path = layout.blob_file("r", parse_digest(image["digest"]))
    world.registry.driver.put_content(path, b"{not json")  # damaged in storage
    world.registry.parsed = ManifestCache()  # as after a restart: nothing parsed is remembered
    world.later()
    assert world.collect("r").blobs == []
    assert str(digest_bytes(b"needed-layer")) in world.blobs("r")


def test_a_repository_left_empty_is_removed_and_observers_are_told() -> None:
    world = World()
    told: list[str] = []
    world.registry.observers.append(_Told(told))  # type: ignore[arg-type]
    world.image("team/app", b"layer", "v1")
    world.image("team/other", b"other", "v1")
    asyncio.run(world.registry.delete_manifest("team/app", "v1"))
    world.later()
    result = world.collect("team/app")
    assert result.repository_removed and told[-1] == "removed team/app"
    assert world.registry.repositories() == ["team/other"]
    assert not world.registry.driver.exists("team/app")
    assert world.collect("team/other").total == 0  # holds a tagged image: stays
    assert not world.collect("team/other").repository_removed


def test_a_repository_with_young_content_stays() -> None:
    world = World()
    world.image("r", b"layer", "v1")
    asyncio.run(world.registry.delete_manifest("r", "v1"))
    world.later()
    world.blob("r", b"pushed just now")
    result = world.collect("r")
    assert len(result.manifests) == 1 and not result.repository_removed
    assert world.registry.repositories() == ["r"]


def test_a_preview_changes_nothing_and_lists_what_a_run_removes() -> None:
    world = World()
    world.image("r", b"kept", "v1")
    world.image("r", b"gone", "v2")
    world.image("empty", b"alone", "v1")
    for repo, tag in (("r", "v2"), ("empty", "v1")):
        asyncio.run(world.registry.delete_manifest(repo, tag))
    world.blob("r", b"dangling")
    world.later()
    before = {repo: (world.manifests(repo), world.blobs(repo)) for repo in ("r", "empty")}
    preview = GarbageCollector(world.registry, DELAY, clock=world.now, preview=True)
    previews = {repo: asyncio.run(preview.collect(repo)) for repo in ("r", "empty")}
    after = {repo: (world.manifests(repo), world.blobs(repo)) for repo in ("r", "empty")}
    assert after == before and world.registry.repositories() == ["empty", "r"]
    for repo in ("r", "empty"):
        real = world.collect(repo)
        assert (previews[repo].manifests, previews[repo].blobs) == (real.manifests, real.blobs)
        assert previews[repo].files == real.files
        assert previews[repo].repository_removed == real.repository_removed
    assert previews["empty"].repository_removed and not previews["r"].repository_removed
    assert str(digest_bytes(b"dangling")) in previews["r"].blobs
    assert world.registry.repositories() == ["r"]


def test_a_push_that_counted_on_a_removed_repository_lays_it_out_again() -> None:
    """A push made sure the repository exists, then GC removed it (empty) before the push
    took its lock: the push lays the repository out again and observers hear of it."""
    world = World()
    told: list[str] = []
    world.image("r", b"layer", "v1")
    world.registry.observers.append(_Told(told))  # type: ignore[arg-type]
    asyncio.run(world.registry.delete_manifest("r", "v1"))
    world.later()
    empty_index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}

    async def ensured_before_gc(repo: str) -> None:  # it ran, and found the repository
        assert (await world.gc.collect(repo)).repository_removed

    world.registry.ensure_repository = ensured_before_gc  # type: ignore[method-assign]
    # as when its index is not cached here: the push asks whether the repository exists
    world.registry.indexes.holds = lambda repo: False  # type: ignore[method-assign]
    pushed = world.manifest("r", empty_index, "v2")
    assert world.registry.repositories() == ["r"]
    assert world.registry.resolve("r", "v2").digest == pushed["digest"]
    assert told == ["removed r", "created r"]


def test_an_instance_that_saw_a_repository_another_removed_lays_it_out_again() -> None:
    """The push skips the existence check where the repository's index is cached; GC on
    another instance removed it meanwhile: the commit lays it out again."""
    world = World()
    other = Registry(world.registry.driver, KeyedLocks(None))
    told: list[str] = []
    other.observers.append(_Told(told))  # type: ignore[arg-type]
    world.image("r", b"layer", "v1")
    assert other.resolve("r", "v1")  # read there, so cached there
    asyncio.run(world.registry.delete_manifest("r", "v1"))
    world.later()
    assert world.collect("r").repository_removed
    assert other.indexes.holds("r")
    empty_index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []})
    asyncio.run(other.put_manifest("r", "v2", empty_index.encode(), mt.OCI_INDEX, []))
    assert world.registry.repositories() == ["r"]
    assert world.registry.driver.exists(layout.layout_file("r"))
    assert [*world.registry.index("r").tags] == ["v2"]  # type: ignore[union-attr]
    assert told == ["created r"]


def test_gc_waits_on_storage_off_the_event_loop() -> None:
    """GC's storage work (here a stat that waits, as an S3 request does) runs in a worker
    thread: while it waits, the event loop runs other requests' work; the stat goes on
    only once a coroutine on the loop lets it."""
    world = World()
    world.blob("r", b"dangling")
    world.later()
    waiting, go, released = threading.Event(), threading.Event(), []
    driver = world.registry.driver
    stat = driver.stat

    def slow_stat(path: str) -> Any:
        if "/blobs/" in path:
            waiting.set()
            released.append(go.wait(5))  # False: nothing on the loop could run meanwhile
        return stat(path)

    driver.stat = slow_stat  # type: ignore[method-assign]

    async def run() -> Collected:
        collecting = asyncio.create_task(world.gc.collect("r"))
        while not waiting.is_set():
            await asyncio.sleep(0.01)
        go.set()  # runs only while GC's stat waits elsewhere
        return await collecting

    result = asyncio.run(run())
    assert released and all(released), released
    assert result.blobs == [str(digest_bytes(b"dangling"))]


def test_a_cancelled_gc_holds_the_lock_until_its_work_has_ended() -> None:
    """The task of a GC cancelled while its thread works (the scheduler stopping) keeps the
    repository's lock until that work is done: nobody else holds the lock while GC still
    removes files."""
    world = World()
    world.blob("r", b"dangling")
    world.later()
    waiting, go = threading.Event(), threading.Event()
    driver = world.registry.driver
    stat = driver.stat

    def slow_stat(path: str) -> Any:
        if "/blobs/" in path:
            waiting.set()
            go.wait(5)
        return stat(path)

    driver.stat = slow_stat  # type: ignore[method-assign]
    dangling = str(digest_bytes(b"dangling"))

    async def run() -> tuple[bool, set[str]]:
        collecting = asyncio.create_task(world.gc.collect("r"))
        while not waiting.is_set():
            await asyncio.sleep(0.01)
        collecting.cancel()
        taken = asyncio.Event()

        async def take() -> set[str]:
            async with world.registry.locks.hold("r"):
                taken.set()
                return world.blobs("r")  # what the holder finds: GC's work ended

        taking = asyncio.create_task(take())
        await asyncio.sleep(0.2)
        early = taken.is_set()  # the lock taken while GC's thread still waits
        go.set()
        found = await taking
        with contextlib.suppress(asyncio.CancelledError):
            await collecting
        return early, found

    early, found = asyncio.run(run())
    assert not early
    assert dangling not in found


class _Told:
    """An observer that notes which repositories were created and removed."""

    def __init__(self, told: list[str]) -> None:
        self.told = told

    def removed(self, repo: str) -> None:
        self.told.append(f"removed {repo}")

    def created(self, repo: str) -> None:
        self.told.append(f"created {repo}")

    def pushed(self, *_: object, **__: object) -> None: ...

    def untagged(self, *_: object) -> None: ...

    def deleted(self, *_: object) -> None: ...
