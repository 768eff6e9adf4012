"""Group commit: pushes queued behind a repository's lock share one index write, each with its
own answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable
from typing import Any

import pytest

from ocireg.digests import digest_bytes, parse_digest
from ocireg.errors import ErrorCode, RegistryError
from ocireg.registry import layout
from ocireg.registry import mediatypes as mt
from ocireg.storage.memory import MemoryDriver
from tests.registry.world import World

REPO = "team/app"


def _document(world: World, layer: bytes, missing: bool = False) -> bytes:
    config = world.blob(REPO, b'{"architecture":"amd64","os":"linux"}')
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    layers = [world.blob(REPO, layer)]
    if missing:
        layers[0] = {**layers[0], "digest": "sha256:" + "0" * 64}
    document = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config}
    return json.dumps({**document, "layers": layers}).encode()


async def _queued_behind_lock(world: World, pushes: list[Awaitable[Any]]) -> list[Any]:
    """Start ``pushes`` while the repository lock is held, then let them all run."""
    async with world.registry.locks.hold(REPO):
        tasks = [asyncio.ensure_future(push) for push in pushes]
        for _ in range(5):
            await asyncio.sleep(0)
    return await asyncio.gather(*tasks, return_exceptions=True)


def _saves(world: World) -> list[str]:
    saves: list[str] = []
    world.registry.indexes.listeners.append(lambda repo, before, after: saves.append(repo))
    return saves


def test_pushes_queued_behind_the_lock_share_one_index_write() -> None:
    world = World()
    documents = [_document(world, f"layer {n}".encode()) for n in range(20)]
    saves = _saves(world)
    put = world.registry.put_manifest
    results = asyncio.run(
        _queued_behind_lock(
            world, [put(REPO, f"v{n}", doc, mt.OCI_MANIFEST, []) for n, doc in enumerate(documents)]
        )
    )
    assert all(not isinstance(result, BaseException) for result in results)
    assert saves == [REPO]
    index = world.registry.index(REPO)
    assert index is not None
    assert index.sorted_tags() == sorted(f"v{n}" for n in range(20))


def test_a_refused_push_fails_alone() -> None:
    world = World()
    good = _document(world, b"good")
    bad = _document(world, b"bad", missing=True)
    put = world.registry.put_manifest
    # The first check (before the lock) passes for both; the missing blob shows up under it.
    layer = json.loads(bad)["layers"][0]["digest"]
    world.registry.driver.put_content(layout.blob_file(REPO, parse_digest(layer)), b"x")

    async def push_then_lose_the_blob() -> list[Any]:
        pushes = [put(REPO, "good", good, None, []), put(REPO, "bad", bad, None, [])]
        async with world.registry.locks.hold(REPO):
            tasks = [asyncio.ensure_future(push) for push in pushes]
            for _ in range(5):
                await asyncio.sleep(0)
            world.registry.driver.delete(layout.blob_file(REPO, parse_digest(layer)))
        return await asyncio.gather(*tasks, return_exceptions=True)

    first, second = asyncio.run(push_then_lose_the_blob())
    assert not isinstance(first, BaseException)
    assert isinstance(second, RegistryError)
    assert second.code is ErrorCode.MANIFEST_BLOB_UNKNOWN
    index = world.registry.index(REPO)
    assert index is not None
    assert index.sorted_tags() == ["good"]


def test_a_failed_index_write_fails_every_push_of_the_batch() -> None:
    world = World()
    documents = [_document(world, f"layer {n}".encode()) for n in range(3)]
    driver = world.registry.driver
    assert isinstance(driver, MemoryDriver)
    original = driver.put_pieces

    def failing(path: str, pieces: Iterable[bytes]) -> None:
        if path == layout.index_file(REPO):
            raise OSError("disk full")
        original(path, pieces)

    driver.put_pieces = failing  # type: ignore[method-assign]
    put = world.registry.put_manifest
    results = asyncio.run(
        _queued_behind_lock(
            world, [put(REPO, f"v{n}", doc, None, []) for n, doc in enumerate(documents)]
        )
    )
    assert [type(result) for result in results] == [OSError] * 3
    driver.put_pieces = original  # type: ignore[method-assign]
    world.registry.indexes.forget(REPO)
    index = world.registry.index(REPO)
    assert index is not None
    assert index.tags == {}


def test_a_cancelled_push_does_not_strand_the_pushes_behind_it() -> None:
    world = World()
    documents = [_document(world, f"layer {n}".encode()) for n in range(3)]
    put = world.registry.put_manifest

    async def cancel_the_first() -> list[Any]:
        async with world.registry.locks.hold(REPO):
            tasks = [
                asyncio.ensure_future(put(REPO, f"v{n}", doc, None, []))
                for n, doc in enumerate(documents)
            ]
            for _ in range(5):
                await asyncio.sleep(0)
            tasks[0].cancel()
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)

    results = asyncio.run(cancel_the_first())
    assert isinstance(results[0], asyncio.CancelledError)
    assert not any(isinstance(result, BaseException) for result in results[1:])
    index = world.registry.index(REPO)
    assert index is not None
    # the cancelled client's push was already queued: it lands, as if it had finished
    assert index.sorted_tags() == ["v0", "v1", "v2"]


def test_moving_a_tag_is_asked_under_the_lock() -> None:
    world = World()
    first, second = _document(world, b"first"), _document(world, b"second")
    put = world.registry.put_manifest
    never = lambda: False  # noqa: E731 - the caller may create tags, not move them
    asyncio.run(put(REPO, "v1", first, None, [], may_move_tags=never))  # a new tag: fine
    asyncio.run(put(REPO, "v1", first, None, [], may_move_tags=never))  # same manifest: fine
    blobs = world.blobs(REPO)
    with pytest.raises(RegistryError) as refused:
        asyncio.run(put(REPO, "v1", second, None, [], may_move_tags=never))
    assert refused.value.code is ErrorCode.DENIED
    index = world.registry.index(REPO)
    assert index is not None and index.tags["v1"]["digest"] == str(digest_bytes(first))
    assert world.blobs(REPO) == blobs  # the refused manifest was not stored either
    asyncio.run(put(REPO, "v1", second, None, [], may_move_tags=lambda: True))
