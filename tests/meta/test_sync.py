"""The meta DB follows storage: a full sync at start, recorded changes while serving."""

from __future__ import annotations

import asyncio
import json

from ocireg.meta.db import SQLiteMetaDB
from ocireg.meta.records import Platform
from ocireg.meta.sync import Recorder, sync_all
from ocireg.registry import mediatypes as mt
from tests.registry.world import World

CONFIG = json.dumps(
    {"architecture": "arm64", "os": "linux", "variant": "v8", "created": "2026-01-02T03:04:05Z",
     "config": {"Labels": {"org.opencontainers.image.vendor": "ACME"}}}
).encode()  # fmt: skip


def test_sync_reads_storage_once_and_then_only_what_changed() -> None:
    world, db = World(), SQLiteMetaDB(":memory:")
    child = world.image("r", b"layer", "sha256:", annotations={"a": "b"})
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [child]}
    multi = world.manifest("r", index, "multi")
    first = sync_all(world.registry, db)
    assert (first.repositories, first.rebuilt) == (1, 1)
    assert db.tags("r") == {"multi": multi["digest"]}
    stored = db.image("r", child["digest"])
    assert stored is not None and stored["annotations"] == {"a": "b"}
    assert stored["platforms"] == [Platform("linux", "amd64")]
    assert db.image("r", multi["digest"])["platforms"] == [Platform("linux", "amd64")]  # type: ignore[index]
    assert sync_all(world.registry, db).rebuilt == 0  # nothing changed: nothing read
    world.image("r", b"other", "v2")
    assert sync_all(world.registry, db).rebuilt == 1
    assert set(db.tags("r")) == {"multi", "v2"}


def test_a_repository_gone_from_storage_is_dropped() -> None:
    world, db = World(), SQLiteMetaDB(":memory:")
    world.image("gone", b"layer", "v1")
    sync_all(world.registry, db)
    world.registry.driver.delete("gone")
    world.registry.indexes.forget("gone")
    result = sync_all(world.registry, db)
    assert (result.dropped, db.repositories()) == (1, [])


def test_recorder_applies_pushes_deletes_and_pulls_in_a_batch() -> None:
    world, db = World(), SQLiteMetaDB(":memory:")
    recorder = Recorder(world.registry, db)
    world.registry.observers.append(recorder)
    config = world.blob("r", CONFIG)
    layer = world.blob("r", b"layer")
    document = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {**config, "mediaType": "application/vnd.oci.image.config.v1+json"},
        "layers": [{**layer, "mediaType": "application/vnd.oci.image.layer.v1.tar"}],
    }
    pushed = world.manifest("r", document, "v1")
    for _ in range(3):
        world.registry.note_pull("r", pushed["digest"])
    assert db.image("r", pushed["digest"]) is None  # recorded, not yet applied
    assert recorder.flush() == 2
    stored = db.image("r", pushed["digest"])
    assert stored is not None
    assert stored["downloads"] == 3 and stored["pushed_at"] is not None
    assert stored["platforms"] == [Platform("linux", "arm64", "v8")]
    assert stored["labels"] == {"org.opencontainers.image.vendor": "ACME"}
    assert stored["created"] == "2026-01-02T03:04:05Z"
    assert stored["content_size"] == pushed["size"] + len(CONFIG) + len(b"layer")
    asyncio.run(world.registry.delete_manifest("r", "v1"))
    recorder.flush()
    assert db.tags("r") == {}
    asyncio.run(world.registry.delete_manifest("r", pushed["digest"]))
    recorder.flush()
    assert db.image("r", pushed["digest"]) is None


def test_recorded_changes_keep_the_stamp_current_so_a_restart_reads_nothing() -> None:
    world, db = World(), SQLiteMetaDB(":memory:")
    world.image("r", b"layer", "v1")
    sync_all(world.registry, db)
    recorder = Recorder(world.registry, db)
    world.registry.observers.append(recorder)
    world.registry.indexes.listeners.append(recorder.index_saved)
    world.image("r", b"second", "v2")
    asyncio.run(world.registry.delete_manifest("r", "v1"))
    recorder.flush()
    index = world.registry.index("r")
    assert index is not None and db.stamp("r") == index.stamp
    assert sync_all(world.registry, db).rebuilt == 0
