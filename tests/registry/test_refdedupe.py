"""Dedupe by reference (the s3 roots' dedupe), on the memory driver: what a crash at each step
leaves, and that readers never see a placeholder as an empty blob. End to end on s3:
``tests/e2e/test_s3_dedupe.py`` and ``tests/scaleout/test_dedupe_shared.py``."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from ocireg.digests import Digest, digest_bytes
from ocireg.errors import RegistryError
from ocireg.registry import layout, refdedupe
from ocireg.registry.dedupe import store_file
from ocireg.registry.dedupeindex import SQLiteDedupeIndex
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.refdedupe import ReferenceDedupe, blob_digest
from ocireg.registry.store import Registry
from ocireg.storage.driver import FileInfo, PathNotFoundError
from ocireg.storage.memory import MemoryDriver

DATA = b"layer bytes " * 1000
DIGEST = digest_bytes(DATA)
STORE = "s3://bucket/prefix"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bucket() -> MemoryDriver:
    return MemoryDriver()


@pytest.fixture
def dedupe(bucket: MemoryDriver) -> ReferenceDedupe:
    return ReferenceDedupe(bucket, SQLiteDedupeIndex(":memory:"), KeyedLocks(None), STORE, True)


@pytest.fixture
def registry(bucket: MemoryDriver, dedupe: ReferenceDedupe) -> Registry:
    return Registry(bucket, KeyedLocks(None), references=dedupe)


def _upload(bucket: MemoryDriver, repo: str) -> str:
    path = layout.upload_file(repo, "0" * 32)
    bucket.put_content(path, DATA)
    return path


def test_a_second_repository_gets_a_placeholder_and_reads_the_content(
    bucket: MemoryDriver, dedupe: ReferenceDedupe, registry: Registry
) -> None:
    for repo in ("a", "b"):
        assert dedupe.take(repo, DIGEST, _upload(bucket, repo), move=True)
    assert bucket.get_content(store_file(DIGEST)) == DATA
    for repo in ("a", "b"):
        assert bucket.stat(layout.blob_file(repo, DIGEST)).size == 0
        assert registry.blob_info(repo, DIGEST).size == len(DATA)
        with registry.driver.reader(layout.blob_file(repo, DIGEST), 5) as handle:
            assert handle.read() == DATA[5:]
    assert set(dedupe.index.holders(STORE, str(DIGEST))) == {"a", "b"}
    assert dedupe.index.content(STORE, str(DIGEST)) == (store_file(DIGEST), len(DATA))


def test_a_placeholder_whose_content_is_missing_reads_as_unknown_never_empty(
    bucket: MemoryDriver, registry: Registry
) -> None:
    bucket.put_content(layout.blob_file("a", DIGEST), b"")  # no content, no reference
    with pytest.raises(RegistryError) as raised:
        registry.blob_info("a", DIGEST)
    assert raised.value.code.name == "BLOB_UNKNOWN"
    assert registry.blob_bytes("a", DIGEST, 1 << 20) is None


def test_the_empty_blob_stored_as_itself_reads_as_empty(
    bucket: MemoryDriver, registry: Registry
) -> None:
    empty = Digest("sha256", hashlib.sha256(b"").hexdigest())
    bucket.put_content(layout.blob_file("a", empty), b"")  # written with dedupe off
    assert registry.blob_info("a", empty).size == 0
    assert registry.blob_bytes("a", empty, 10) == b""


def test_a_crash_before_the_placeholder_leaves_content_the_sweep_removes_after_gc_delay(
    bucket: MemoryDriver, dedupe: ReferenceDedupe
) -> None:
    """Steps 1 and 2 (content, reference) done, the placeholder never written: nobody can
    read the blob, and the reference only keeps the content until it is ``gcDelay`` old."""
    clock = Clock()
    bucket.put_content(store_file(DIGEST), DATA)
    dedupe.index.refer(STORE, str(DIGEST), "a", store_file(DIGEST), len(DATA))
    clock.now = bucket.stat(store_file(DIGEST)).mod_time + 5
    assert dedupe.sweep(10, clock) == []  # young: a commit may be writing the placeholder
    assert bucket.exists(store_file(DIGEST))
    clock.now += 3600
    assert [info.path for info in dedupe.sweep(10, clock)] == [store_file(DIGEST)]
    assert not bucket.exists(store_file(DIGEST))
    assert dedupe.index.holders(STORE, str(DIGEST)) == {}
    assert dedupe.index.content(STORE, str(DIGEST)) is None


def test_a_crash_between_gc_steps_leaves_a_reference_the_sweep_drops(
    bucket: MemoryDriver, dedupe: ReferenceDedupe
) -> None:
    """GC deleted a's placeholder and died before dropping the reference; b still holds it."""
    clock = Clock()
    for repo in ("a", "b"):
        dedupe.take(repo, DIGEST, _upload(bucket, repo), move=True)
    bucket.delete(layout.blob_file("a", DIGEST))  # the bucket itself: the row stays
    clock.now = bucket.stat(store_file(DIGEST)).mod_time + 3600
    assert dedupe.sweep(10, clock) == []  # b references it
    assert set(dedupe.index.holders(STORE, str(DIGEST))) == {"b"}
    assert bucket.get_content(store_file(DIGEST)) == DATA


def test_a_lost_index_loses_nothing_the_bucket_references(
    bucket: MemoryDriver, dedupe: ReferenceDedupe, registry: Registry
) -> None:
    """The index is derived: a placeholder is a reference, and the sweep records it again
    rather than removing the content (a SQLite file lost, or an instance with its own)."""
    clock = Clock()
    asyncio.run(registry.ensure_repository("a"))
    dedupe.take("a", DIGEST, _upload(bucket, "a"), move=True)
    dedupe.index = SQLiteDedupeIndex(":memory:")
    clock.now = bucket.stat(store_file(DIGEST)).mod_time + 3600
    assert dedupe.sweep(10, clock) == []
    assert registry.blob_bytes("a", DIGEST, 1 << 20) == DATA
    assert set(dedupe.index.holders(STORE, str(DIGEST))) == {"a"}


def test_turning_dedupe_off_keeps_content_that_a_placeholder_still_names(
    bucket: MemoryDriver, dedupe: ReferenceDedupe, registry: Registry
) -> None:
    """The conversion to copies reached a, not b (pushed meanwhile through an instance still
    deduping): the content stays for b; once b is a copy too, it goes."""
    for repo in ("a", "b"):
        asyncio.run(registry.ensure_repository(repo))
        dedupe.take(repo, DIGEST, _upload(bucket, repo), move=True)
    dedupe.enabled = False
    assert dedupe.convert(["a"]) == 1
    assert bucket.get_content(layout.blob_file("a", DIGEST)) == DATA  # a copy of its own
    assert bucket.get_content(store_file(DIGEST)) == DATA
    assert registry.blob_bytes("b", DIGEST, 1 << 20) == DATA
    bucket.delete(".ocireg/dedupe.json")  # as if never converted: run again, over both
    assert dedupe.convert(["a", "b"]) == 1
    assert not bucket.exists(store_file(DIGEST))
    assert registry.blob_bytes("b", DIGEST, 1 << 20) == DATA


def test_deleting_a_blob_drops_only_that_repositorys_reference(
    bucket: MemoryDriver, dedupe: ReferenceDedupe, registry: Registry
) -> None:
    clock = Clock()
    for repo in ("a", "b"):
        dedupe.take(repo, DIGEST, _upload(bucket, repo), move=True)
    asyncio.run(registry.delete_blob("a", DIGEST))
    assert set(dedupe.index.holders(STORE, str(DIGEST))) == {"b"}
    clock.now = bucket.stat(store_file(DIGEST)).mod_time + 3600
    assert dedupe.sweep(10, clock) == []
    asyncio.run(registry.delete_blob("b", DIGEST))
    assert len(dedupe.sweep(10, clock)) == 1
    assert not bucket.exists(store_file(DIGEST))


def test_a_mount_from_a_placeholder_references_the_stored_content(
    bucket: MemoryDriver, dedupe: ReferenceDedupe, registry: Registry
) -> None:
    dedupe.take("a", DIGEST, _upload(bucket, "a"), move=True)
    asyncio.run(registry.ensure_repository("a"))
    assert asyncio.run(registry.mount_blob("b", DIGEST, ["a"]))
    assert bucket.stat(layout.blob_file("b", DIGEST)).size == 0
    assert registry.blob_bytes("b", DIGEST, 1 << 20) == DATA
    # the content gone (never after a commit; say a hand-made bucket): nothing to mount
    bucket.delete(store_file(DIGEST))
    assert not asyncio.run(registry.mount_blob("c", DIGEST, ["a"]))


def test_stored_content_is_taken_by_reference_without_a_source(
    bucket: MemoryDriver, dedupe: ReferenceDedupe, registry: Registry
) -> None:
    """What sync asks before fetching a blob: the content store has it, so the repository
    gets a placeholder and a reference, and reads the content; nothing stored, nothing
    taken."""
    dedupe.take("a", DIGEST, _upload(bucket, "a"), move=True)
    assert asyncio.run(registry.take_stored("mirror", DIGEST)) == len(DATA)
    assert bucket.stat(layout.blob_file("mirror", DIGEST)).size == 0
    assert registry.blob_bytes("mirror", DIGEST, 1 << 20) == DATA
    assert set(dedupe.index.holders(STORE, str(DIGEST))) == {"a", "mirror"}
    other = Digest("sha256", "0" * 64)
    assert asyncio.run(registry.take_stored("mirror", other)) is None
    assert not bucket.exists(layout.blob_file("mirror", other))


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("a/b/blobs/sha256/ab", ("a/b", Digest("sha256", "ab"))),
        (".ocireg/blobs/sha256/ab", None),  # the content store itself
        ("a/.uploads/x", None),
        ("a/blobs/sha256", None),
        ("a/blobs/sha256/ab/c", None),
    ],
)
def test_blob_paths_are_told_apart(path: str, named: tuple[str, Digest] | None) -> None:
    assert blob_digest(path) == named


class StatCounting(MemoryDriver):
    """The memory driver, counting the stats asked of it by path (an S3 HEAD each)."""

    def __init__(self) -> None:
        super().__init__()
        self.stats: list[str] = []

    def stat(self, path: str) -> FileInfo:
        self.stats.append(path)
        return super().stat(path)


def test_a_placeholder_read_asks_the_content_size_once_per_process() -> None:
    bucket = StatCounting()
    writer = ReferenceDedupe(bucket, SQLiteDedupeIndex(":memory:"), KeyedLocks(None), STORE, True)
    assert writer.take("a", DIGEST, _upload(bucket, "a"), move=True)
    placeholder = layout.blob_file("a", DIGEST)
    # the committing process learnt the size: a read stats the placeholder alone
    registry = Registry(bucket, KeyedLocks(None), references=writer)
    bucket.stats.clear()
    assert registry.blob_info("a", DIGEST).size == len(DATA)
    assert bucket.stats == [placeholder]
    # another process (its own memory) asks the content once, then no more
    other = ReferenceDedupe(bucket, SQLiteDedupeIndex(":memory:"), KeyedLocks(None), STORE, True)
    reader = Registry(bucket, KeyedLocks(None), references=other)
    for _ in range(2):
        assert reader.blob_info("a", DIGEST).size == len(DATA)
    assert bucket.stats == [placeholder, placeholder, store_file(DIGEST), placeholder]


def test_content_removed_by_hand_after_its_size_was_learnt_still_reads_as_unknown(
    bucket: MemoryDriver, dedupe: ReferenceDedupe, registry: Registry
) -> None:
    assert dedupe.take("a", DIGEST, _upload(bucket, "a"), move=True)
    bucket.delete(store_file(DIGEST))
    assert registry.blob_bytes("a", DIGEST, 1 << 20) is None
    with pytest.raises(PathNotFoundError):
        registry.driver.reader(layout.blob_file("a", DIGEST))


def test_learnt_sizes_are_bounded_least_recently_learnt_first(
    dedupe: ReferenceDedupe, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(refdedupe, "SIZES_KEPT", 2)
    digests = [digest_bytes(bytes([n])) for n in range(3)]
    for size, digest in enumerate(digests):
        dedupe.learn_size(digest, size)
    dedupe.learn_size(digests[1], 1)  # learnt again: now the most recent
    dedupe.learn_size(digests[0], 0)
    assert [dedupe.content_size(digest) for digest in digests] == [0, 1, None]
