from __future__ import annotations

from ocireg.registry import index as idx
from ocireg.registry.index import IndexStore, entry_tag
from ocireg.storage.memory import MemoryDriver


def _d(n: int) -> dict[str, object]:
    return {"mediaType": "m/t", "digest": f"sha256:{n:064d}", "size": n}


def test_tagging_absorbs_the_untagged_entry() -> None:
    entries = idx.with_manifest([], _d(1))
    entries = idx.with_tag(entries, "v1", _d(1))
    assert [entry_tag(e) for e in entries] == ["v1"]
    entries = idx.with_tag(entries, "v2", _d(1))
    assert sorted(entry_tag(e) or "" for e in entries) == ["v1", "v2"]


def test_moving_a_tag_keeps_the_old_manifest_untagged() -> None:
    entries = idx.with_tag([], "t", _d(1))
    entries = idx.with_manifest(entries, _d(2))
    entries = idx.with_tag(entries, "t", _d(2))
    assert [(e["digest"], entry_tag(e)) for e in entries] == [
        (_d(1)["digest"], None),
        (_d(2)["digest"], "t"),
    ]


def test_untagging_keeps_the_manifest() -> None:
    entries = idx.with_tag([], "a", _d(1))
    entries = idx.with_tag(entries, "b", _d(1))
    entries = idx.without_tag(entries, "a")
    assert [entry_tag(e) for e in entries] == ["b"]
    entries = idx.without_tag(entries, "b")
    assert entries == [_d(1)]
    assert idx.without_digest(entries, str(_d(1)["digest"])) == []


def test_store_caches_and_notices_changes_by_other_writers() -> None:
    driver = MemoryDriver()
    store, other = IndexStore(driver), IndexStore(driver)
    assert store.load("r") is None
    store.save("r", idx.with_tag([], "x", _d(1)))
    first = store.load("r")
    assert first is not None and store.load("r") is first
    other.save("r", idx.with_tag([], "x", _d(2)))  # same size, another process
    changed = store.load("r")
    assert changed is not None and changed.tags["x"]["digest"] == _d(2)["digest"]
    assert changed.sorted_tags() == ["x"]
