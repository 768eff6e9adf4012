from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

from ocireg.digests import parse_digest
from ocireg.registry import layout
from ocireg.registry.index import (
    GENERATION,
    REMOVALS,
    RUN,
    IndexEdit,
    IndexStore,
    RepoIndex,
    entry_tag,
)
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.store import Registry
from ocireg.storage.filesystem import FilesystemDriver
from ocireg.storage.memory import MemoryDriver


def _d(n: int) -> dict[str, object]:
    return {"mediaType": "m/t", "digest": f"sha256:{n:064d}", "size": n}


def _tags(edit: IndexEdit) -> list[tuple[object, str | None]]:
    return [(e["digest"], entry_tag(e)) for e in edit.entries]


def test_tagging_absorbs_the_untagged_entry() -> None:
    edit = IndexEdit(None)
    edit.add_manifest(_d(1))
    edit.set_tag("v1", _d(1))
    assert [entry_tag(e) for e in edit.entries] == ["v1"]
    edit.set_tag("v2", _d(1))
    assert sorted(entry_tag(e) or "" for e in edit.entries) == ["v1", "v2"]
    assert edit.counts == {_d(1)["digest"]: 2} and edit.untagged == {}


def test_moving_a_tag_keeps_the_old_manifest_untagged() -> None:
    edit = IndexEdit(None)
    edit.set_tag("t", _d(1))
    edit.add_manifest(_d(2))
    edit.set_tag("t", _d(2))
    assert _tags(edit) == [(_d(1)["digest"], None), (_d(2)["digest"], "t")]
    assert edit.tags["t"]["digest"] == _d(2)["digest"]


def test_untagging_keeps_the_manifest() -> None:
    edit = IndexEdit(None)
    edit.set_tag("a", _d(1))
    edit.set_tag("b", _d(1))
    edit.remove_tag("a")
    assert [entry_tag(e) for e in edit.entries] == ["b"]
    edit.remove_tag("b")
    assert edit.entries == [_d(1)]
    edit.remove_digest(str(_d(1)["digest"]))
    assert edit.entries == [] and edit.by_digest == {} and edit.counts == {}


def test_edits_keep_the_maps_equal_to_a_rebuild() -> None:
    edit = IndexEdit(None)
    for n in range(30):
        edit.add_manifest(_d(n % 7))
        edit.set_tag(f"t{n % 11}", _d(n % 7))
        if n % 5 == 0:
            edit.remove_tag(f"t{(n + 3) % 11}")
    built = edit.result("g")
    rebuilt = RepoIndex.from_entries(list(built.entries))
    assert built.tags == rebuilt.tags
    assert built.counts == rebuilt.counts
    assert built.untagged == rebuilt.untagged
    assert built.by_digest.keys() == rebuilt.by_digest.keys()


def test_saved_file_is_an_oci_index_with_a_generation_first() -> None:
    driver = MemoryDriver()
    store = IndexStore(driver)
    edit = store.edit("r")
    edit.set_tag("x", _d(1))
    store.save("r", edit)
    raw = driver.get_content(layout.index_file("r"))
    document = json.loads(raw)
    assert document["schemaVersion"] == 2
    assert document["manifests"][0]["annotations"] == {layout.REF_NAME: "x"}
    assert raw.index(GENERATION.encode()) < 128


def test_store_caches_and_notices_changes_by_other_writers() -> None:
    driver = MemoryDriver()
    store, other = IndexStore(driver), IndexStore(driver)
    assert store.load("r") is None
    edit = store.edit("r")
    edit.set_tag("x", _d(1))
    store.save("r", edit)
    first = store.load("r")
    assert first is not None and store.load("r") is first
    edit = other.edit("r")
    edit.set_tag("x", _d(2))  # same size, another process
    other.save("r", edit)
    changed = store.load("r")
    assert changed is not None and changed.tags["x"]["digest"] == _d(2)["digest"]
    assert changed.sorted_tags() == ["x"]


def test_a_file_written_by_another_tool_is_compared_in_full() -> None:
    driver = MemoryDriver()
    store = IndexStore(driver)
    path = layout.index_file("r")
    plain = {"schemaVersion": 2, "manifests": [{**_d(1), "annotations": {layout.REF_NAME: "a"}}]}
    driver.put_content(path, json.dumps(plain).encode())
    first = store.load("r")
    assert first is not None and first.generation is None and store.load("r") is first
    plain["manifests"][0]["annotations"] = {layout.REF_NAME: "b"}
    driver.put_content(path, json.dumps(plain).encode())
    second = store.load("r")
    assert second is not None and list(second.tags) == ["b"]


def test_encoding_kept_while_appending_equals_a_full_encoding() -> None:
    store = IndexStore(MemoryDriver())
    for n in range(12):
        edit = store.edit("r")
        if n % 4 == 3:
            edit.remove_tag(f"t{n - 1}")  # a removal drops the kept encoding
        else:
            edit.set_tag(f"t{n}", _d(n))
        saved = store.save("r", edit)
        full = RepoIndex(list(saved.entries), saved.generation)
        assert saved.manifests_body() == full.manifests_body()
        assert json.loads(saved.encode())["manifests"] == saved.entries


def test_another_process_reads_only_what_an_append_added() -> None:
    driver = MemoryDriver()
    writer, reader = IndexStore(driver), IndexStore(driver)
    edit = writer.edit("r")
    edit.set_tag("a", _d(1))
    writer.save("r", edit)
    assert reader.load("r") is not None
    edit = writer.edit("r")
    edit.set_tag("b", _d(2))
    edit.add_manifest(_d(3))
    saved = writer.save("r", edit)
    raw = driver.get_content(layout.index_file("r"))
    first = json.loads(raw)["annotations"]
    assert first[RUN] != first[GENERATION]  # it continues the run of the version before
    # the reader's copy is extended, not parsed again: corrupt the old part to prove it
    start = raw.index(b'"manifests":[') + len(b'"manifests":[')
    driver.put_content(layout.index_file("r"), raw[:start] + b" " * 10 + raw[start + 10 :])
    extended = reader.load("r")
    assert extended is not None and extended.generation == saved.generation
    assert extended.entries == saved.entries
    assert extended.tags.keys() == {"a", "b"} and set(extended.untagged) == {_d(3)["digest"]}


def test_a_removal_is_read_in_full_by_other_processes() -> None:
    driver = MemoryDriver()
    writer, reader = IndexStore(driver), IndexStore(driver)
    for tag in ("a", "b"):
        edit = writer.edit("r")
        edit.set_tag(tag, _d(len(tag) + ord(tag)))
        writer.save("r", edit)
    assert reader.load("r") is not None
    edit = writer.edit("r")
    edit.remove_tag("a")
    writer.save("r", edit)
    raw = driver.get_content(layout.index_file("r"))
    annotations = json.loads(raw)["annotations"]
    assert annotations[RUN] == annotations[GENERATION]  # a new run starts
    loaded = reader.load("r")
    assert loaded is not None and sorted(loaded.tags) == ["b"]


def test_a_file_that_does_not_continue_the_held_version_is_read_in_full() -> None:
    driver = MemoryDriver()
    writer, reader = IndexStore(driver), IndexStore(driver)
    edit = writer.edit("r")
    edit.set_tag("a", _d(1))
    writer.save("r", edit)
    assert reader.load("r") is not None
    edit = writer.edit("r")
    edit.set_tag("b", _d(2))
    writer.save("r", edit)
    raw = driver.get_content(layout.index_file("r"))
    # the same run, but the bytes where the reader's version ends are not what it holds
    damaged = raw.replace(b'.ref.name":"a"', b'.ref.name":"z"', 1)
    driver.put_content(layout.index_file("r"), damaged)
    loaded = reader.load("r")
    assert loaded is not None and sorted(loaded.tags) == ["b", "z"]


def test_a_long_run_of_appends_keeps_few_chunks_and_every_version_intact() -> None:
    driver = MemoryDriver()
    store = IndexStore(driver)
    versions = []
    for n in range(400):
        edit = store.edit("r")
        edit.set_tag(f"t{n}", _d(n % 9))
        versions.append(store.save("r", edit))
    last = versions[-1]
    assert last.chunks is not None and len(last.chunks) <= 10  # O(log n), not one per push
    assert json.loads(driver.get_content(layout.index_file("r")))["manifests"] == last.entries
    assert len(last.tags) == 400 and last.counts[str(_d(0)["digest"])] == 45
    # earlier versions, which readers may still hold, never see later changes
    assert sorted(versions[9].tags) == sorted(f"t{n}" for n in range(10))
    assert len(versions[9].entries) == 10 and "t10" not in versions[9].tags


def test_another_process_follows_a_long_run_of_appends_by_tails() -> None:
    driver = MemoryDriver()
    writer, reader = IndexStore(driver), IndexStore(driver)
    for n in range(200):
        edit = writer.edit("r")
        edit.set_tag(f"t{n}", _d(n))
        saved = writer.save("r", edit)
        loaded = reader.load("r")
        assert loaded is not None and loaded.generation == saved.generation
        if n % 50 == 49:  # the reader writes too: the writer then follows it
            edit = reader.edit("r")
            edit.add_manifest(_d(1000 + n))
            reader.save("r", edit)
    final = writer.load("r")
    assert final is not None and reader.load("r") is not None
    assert (
        json.loads(final.encode())["manifests"]
        == json.loads(driver.get_content(layout.index_file("r")))["manifests"]
    )
    assert len(final.tags) == 200 and len(final.untagged) == 4


def test_a_process_several_versions_behind_reads_only_the_tail() -> None:
    driver = MemoryDriver()
    writer, reader = IndexStore(driver), IndexStore(driver)
    edit = writer.edit("r")
    edit.set_tag("a", _d(1))
    writer.save("r", edit)
    assert reader.load("r") is not None
    for n in range(2, 6):  # four versions the reader does not see
        edit = writer.edit("r")
        edit.set_tag(f"t{n}", _d(n))
        saved = writer.save("r", edit)
    raw = driver.get_content(layout.index_file("r"))
    # corrupt what the reader already holds: it must not read it again
    start = raw.index(b'"manifests":[') + len(b'"manifests":[')
    driver.put_content(layout.index_file("r"), raw[:start] + b" " * 10 + raw[start + 10 :])
    extended = reader.load("r")
    assert extended is not None and extended.generation == saved.generation
    assert extended.entries == saved.entries and len(extended.tags) == 5


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _image(layer: bytes) -> tuple[bytes, list[bytes]]:
    config = b'{"architecture":"amd64","os":"linux"}'
    described = [
        {
            "mediaType": kind,
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
        for kind, data in (("application/vnd.oci.image.config.v1+json", config), ("l/t", layer))
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": described[0],
        "layers": described[1:],
    }
    return json.dumps(manifest).encode(), [config, layer]


def test_on_local_disk_a_blob_delete_leaves_the_index_file_as_it_was(tmp_path: Path) -> None:
    """No removals token where a blob check is a stat(): the file carries none, and a blob
    DELETE (unlike on S3, see tests/registry/test_push_requests.py) does not rewrite it."""
    driver = FilesystemDriver(tmp_path)
    assert not driver.blob_check_is_request
    registry = Registry(driver, KeyedLocks(None))
    manifest, blobs = _image(b"layer")
    for data in blobs:
        driver.put_content(layout.blob_file("team/app", parse_digest(_sha256(data))), data)
    asyncio.run(registry.put_manifest("team/app", "v1", manifest, None, []))
    asyncio.run(registry.put_manifest("team/app", "v2", manifest.replace(b"}", b"} ", 1), None, []))
    before = driver.get_content(layout.index_file("team/app"))
    assert REMOVALS.encode() not in before
    layer = _sha256(b"unreferenced")
    driver.put_content(layout.blob_file("team/app", parse_digest(layer)), b"unreferenced")
    asyncio.run(registry.delete_blob("team/app", parse_digest(layer)))
    assert driver.get_content(layout.index_file("team/app")) == before
