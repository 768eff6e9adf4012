from __future__ import annotations

import json

from ocireg.registry import layout
from ocireg.registry.index import EXTENDS, GENERATION, IndexEdit, IndexStore, RepoIndex, entry_tag
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
    assert json.loads(raw)["annotations"][EXTENDS].startswith(f"{edit.base_stamp}:")
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
    assert EXTENDS not in json.loads(raw)["annotations"]
    loaded = reader.load("r")
    assert loaded is not None and sorted(loaded.tags) == ["b"]


def test_a_tail_that_does_not_parse_falls_back_to_the_whole_file() -> None:
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
    document = json.loads(raw)
    length = int(document["annotations"][EXTENDS].split(":")[1])
    document["annotations"][EXTENDS] = document["annotations"][EXTENDS].replace(
        f":{length}", f":{length - 3}"
    )
    driver.put_content(layout.index_file("r"), json.dumps(document, separators=(",", ":")).encode())
    loaded = reader.load("r")
    assert loaded is not None and sorted(loaded.tags) == ["a", "b"]
