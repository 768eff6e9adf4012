"""The meta DB follows storage: a full sync at start, recorded changes while serving."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from ocireg.digests import digest_bytes, parse_digest
from ocireg.meta.db import MetaDB, SQLiteMetaDB
from ocireg.meta.records import ImageRecord, Platform
from ocireg.meta.sync import Recorder, sync_all
from ocireg.registry import layout
from ocireg.registry import mediatypes as mt
from tests.registry.world import World

CONFIG = json.dumps(
    {"architecture": "arm64", "os": "linux", "variant": "v8", "created": "2026-01-02T03:04:05Z",
     "config": {"Labels": {"org.opencontainers.image.vendor": "ACME"}}}
).encode()  # fmt: skip


def test_sync_reads_storage_once_and_then_only_what_changed(meta: MetaDB) -> None:
    world, db = World(), meta
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


def test_a_repository_gone_from_storage_is_dropped(meta: MetaDB) -> None:
    world, db = World(), meta
    world.image("gone", b"layer", "v1")
    sync_all(world.registry, db)
    world.registry.driver.delete("gone")
    world.registry.indexes.forget("gone")
    result = sync_all(world.registry, db)
    assert (result.dropped, db.repositories()) == (1, [])


def test_recorder_applies_pushes_deletes_and_pulls_in_a_batch(meta: MetaDB) -> None:
    world, db = World(), meta
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


def test_a_recorded_push_reads_a_config_once_per_process_and_stats_nothing(
    meta: MetaDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On S3 each read is a request: the push knows when it happened (no stat of the
    manifest for it), and a config, named by its digest, is read once while kept."""
    world, db = World(), meta
    recorder = Recorder(world.registry, db)
    world.registry.observers.append(recorder)
    config = {**world.blob("r", CONFIG), "mediaType": "application/vnd.oci.image.config.v1+json"}
    layer = {**world.blob("r", b"layer"), "mediaType": "application/vnd.oci.image.layer.v1.tar"}
    driver = world.registry.driver
    opened: list[str] = []
    stated: list[str] = []
    reader, stat = driver.reader, driver.stat
    monkeypatch.setattr(driver, "reader", lambda path, *a: opened.append(path) or reader(path, *a))
    monkeypatch.setattr(driver, "stat", lambda path: stated.append(path) or stat(path))
    pushed = []
    for n in range(3):  # three manifests of one config, each flushed on its own
        document = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config,
                    "layers": [layer], "annotations": {"n": str(n)}}  # fmt: skip
        pushed.append(world.manifest("r", document, f"v{n}"))
        opened.clear(), stated.clear()
        before = time.time()
        recorder.flush()
        config_path = layout.blob_file("r", parse_digest(config["digest"]))
        assert opened == ([config_path] if n == 0 else [])
        assert stated == []
        stored = db.image("r", pushed[-1]["digest"])
        assert stored is not None and stored["labels"] == json.loads(CONFIG)["config"]["Labels"]
        assert before - 5 < stored["pushed_at"] <= time.time()
    stated.clear()
    assert sync_all(world.registry, db).rebuilt == 1  # a pass over storage asks storage
    manifests = {layout.blob_file("r", parse_digest(p["digest"])) for p in pushed}
    assert manifests <= set(stated)


def test_recorded_changes_keep_the_stamp_current_so_a_restart_reads_nothing(meta: MetaDB) -> None:
    world, db = World(), meta
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


def plant_poisoned(world: World, repo: str) -> str:
    """A manifest an older version accepted: a layer size beyond int64, which SQLite cannot
    hold. Written straight into storage, as that version left it."""
    config = world.blob(repo, CONFIG)
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    layer = {**world.blob(repo, b"layer"), "size": 2**64}
    document = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config,
                "layers": [layer]}  # fmt: skip
    data = json.dumps(document).encode()
    digest = digest_bytes(data)
    world.registry.driver.put_content(layout.blob_file(repo, digest), data)
    descriptor = {"mediaType": mt.OCI_MANIFEST, "digest": str(digest), "size": len(data)}
    edit = world.registry.indexes.edit(repo)
    edit.set_tag("bad", descriptor)
    world.registry.indexes.save(repo, edit)
    return str(digest)


def test_a_poisoned_manifest_is_skipped_with_a_log_line_and_the_sync_goes_on(
    caplog: pytest.LogCaptureFixture, meta: MetaDB
) -> None:
    world, db = World(), meta
    world.image("a-good", b"first", "v1")
    kept = world.image("b-poisoned", b"kept", "v1")
    bad = plant_poisoned(world, "b-poisoned")
    world.image("c-good", b"last", "v1")
    with caplog.at_level(logging.WARNING, logger="ocireg.meta"):
        result = sync_all(world.registry, db)
    assert (result.repositories, set(db.repositories())) == (3, {"a-good", "b-poisoned", "c-good"})
    assert [image["digest"] for image in db.images("b-poisoned")] == [kept["digest"]]
    assert db.tags("b-poisoned") == {"v1": kept["digest"]}
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]  # not the sync line
    (line,) = [json.loads(r.getMessage()) for r in warned]
    assert (line["repo"], line["digest"], line["level"]) == ("b-poisoned", bad, "warn")
    # not stamped: the next start tries it again, rather than believing the DB current
    assert db.stamp("b-poisoned") is None and db.stamp("c-good") is not None


class RefusingDB(SQLiteMetaDB):
    """A meta DB that cannot store one digest (as SQLite cannot store an int beyond int64)."""

    def __init__(self, refused: str) -> None:
        super().__init__(":memory:")
        self.refused = refused

    def put_image(self, repo: str, record: ImageRecord, *args: Any) -> None:
        if record.digest == self.refused:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        super().put_image(repo, record, *args)


def test_a_push_the_db_cannot_store_fails_alone_in_its_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World()
    first = world.image("r", b"first", "v1")  # pushed before the recorder: stamps start here
    artifact = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": world.blob("r", b"{}"), "layers": []}  # fmt: skip
    bad = world.manifest("r", artifact, "bad")
    db = RefusingDB(bad["digest"])
    sync_all(world.registry, db)
    recorder = Recorder(world.registry, db)
    world.registry.observers.append(recorder)
    world.registry.indexes.listeners.append(recorder.index_saved)
    before = world.image("r", b"before", "v2")
    recorder.pushed("r", bad["digest"], bad["size"], ["bad"])
    after = world.image("other", b"after", "v1")
    with caplog.at_level(logging.WARNING, logger="ocireg.meta"):
        assert recorder.flush() == 3
    assert db.image("r", before["digest"]) is not None
    assert db.image("other", after["digest"]) is not None
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]  # not the sync line
    (line,) = [json.loads(r.getMessage()) for r in warned]
    assert (line["repo"], line["digest"]) == ("r", bad["digest"])
    assert "OverflowError" in line["error"]
    # "r" is behind storage now: its stamp stays where it was, so the next start re-reads it
    index = world.registry.index("r")
    assert index is not None and db.stamp("r") != index.stamp
    assert db.stamp("other") == world.registry.index("other").stamp  # type: ignore[union-attr]
    assert db.image("r", first["digest"]) is not None


def test_content_size_saturates_at_int64(meta: MetaDB) -> None:
    """Each layer size fits int64 but their sum does not: the figure is capped, not refused."""
    world, db = World(), meta
    config = world.blob("r", CONFIG)
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    layers = [{**world.blob("r", data), "size": 2**63 - 1} for data in (b"x", b"y")]
    document = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config,
                "layers": layers}  # fmt: skip
    pushed = world.manifest("r", document, "v1")
    sync_all(world.registry, db)
    stored = db.image("r", pushed["digest"])
    assert stored is not None and stored["content_size"] == 2**63 - 1
