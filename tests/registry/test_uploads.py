"""The upload store's appends: a failure cuts the file back to where the append began (a push
that broke off writes nothing), unless the caller keeps what was written (sync's downloads,
which resume from there and whose file readers may be sending)."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterable
from pathlib import Path
from typing import cast
from unittest import mock

import pytest

from ocireg.digests import digest_bytes
from ocireg.errors import RegistryError
from ocireg.registry import layout
from ocireg.registry.dedupe import Dedupe
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.sharedsessions import SharedUploadSessions
from ocireg.registry.store import Registry
from ocireg.registry.uploads import ChunkInfo, SessionCaps, UploadStore
from ocireg.storage import filesystem
from ocireg.storage.filesystem import FilesystemDriver
from ocireg.storage.memory import MemoryDriver

MiB = 1 << 20


class Broken(Exception):
    pass


async def _breaking(data: bytes, piece: int) -> AsyncIterator[bytes]:
    """``data`` in pieces, then a failure (an upstream gone mid-body)."""
    for at in range(0, len(data), piece):
        yield data[at : at + piece]
    raise Broken


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _append_and_finish(tmp_path: Path, keep_partial: bool) -> tuple[int, int, bytes]:
    """Append 3 MiB that then break; the session's size after, and after the rest is sent
    (from where it stood) and the blob completed: its size and stored bytes."""
    data = os.urandom(5 * MiB)
    registry = Registry(FilesystemDriver(tmp_path), KeyedLocks(None))

    async def run() -> tuple[int, int, bytes]:
        await registry.ensure_repository("repo")
        session = await registry.uploads.start("repo")
        await registry.uploads.append("repo", session, _pieces(data[:MiB]), ChunkInfo())
        with pytest.raises(Broken):
            chunks = _breaking(data[MiB : 4 * MiB], MiB)
            await registry.uploads.append("repo", session, chunks, ChunkInfo(), keep_partial)
        after = await registry.uploads.size("repo", session)
        rest = _pieces(data[after:])
        await registry.uploads.complete("repo", session, digest_bytes(data), rest, ChunkInfo())
        stored = registry.driver.local_path(f"repo/blobs/sha256/{digest_bytes(data).encoded}")
        assert stored is not None
        return after, stored.stat().st_size, data

    after, size, data = asyncio.run(run())
    return after, size, data


def test_a_failed_append_is_cut_back_to_where_it_began(tmp_path: Path) -> None:
    after, size, data = _append_and_finish(tmp_path, keep_partial=False)
    assert after == MiB
    assert size == len(data)


def test_a_write_that_fails_part_way_keeps_its_prefix_and_no_hash_state(
    tmp_path: Path,
) -> None:
    """The disk fills during the third block's write, after half of it landed: with
    keep_partial the bytes written stay (a prefix of the data), but the hash state, which never
    saw the half block, is dropped; completing hashes the file again and stores the right
    digest."""
    data = os.urandom(6 * MiB)
    registry = Registry(FilesystemDriver(tmp_path), KeyedLocks(None))
    write = filesystem._FileWriter.write
    writes = 0

    def filling(writer: filesystem._FileWriter, block: bytes) -> int:
        nonlocal writes
        writes += 1
        if writes == 3:
            write(writer, bytes(block)[: len(block) // 2 + 123])
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(writer, block)

    rehash = UploadStore._hash_file
    rehashed: list[str] = []

    def counted(store: UploadStore, repo: str, session: str, algorithm: str) -> str:
        rehashed.append(session)
        return rehash(store, repo, session, algorithm)

    async def run() -> tuple[int, bytes]:
        await registry.ensure_repository("repo")
        session = await registry.uploads.start("repo")
        with (
            mock.patch.object(filesystem._FileWriter, "write", filling),
            pytest.raises(OSError, match="No space left"),
        ):
            chunks = _breaking(data[: 4 * MiB], MiB)
            await registry.uploads.append("repo", session, chunks, ChunkInfo(), True)
        have = await registry.uploads.size("repo", session)
        upload = registry.driver.local_path(layout.upload_file("repo", session))
        assert upload is not None
        kept = upload.read_bytes()
        with mock.patch.object(UploadStore, "_hash_file", counted):
            rest = _pieces(data[have:])
            await registry.uploads.complete("repo", session, digest_bytes(data), rest, ChunkInfo())
        return have, kept

    have, kept = asyncio.run(run())
    assert 2 * MiB < have < 3 * MiB
    assert kept == data[:have]
    assert len(rehashed) == 1  # no hash state kept: the file was hashed again
    assert registry.has_blob("repo", digest_bytes(data))
    stored = registry.driver.local_path(f"repo/blobs/sha256/{digest_bytes(data).encoded}")
    assert stored is not None and stored.read_bytes() == data


def test_a_failed_append_that_keeps_its_part_goes_on_from_there(tmp_path: Path) -> None:
    """What the failed append wrote stays, and its hash state too: the blob completes from
    there with the right digest, without hashing the file again (a wrong state would fail the
    digest check)."""
    with mock.patch.object(UploadStore, "_hash_file", side_effect=AssertionError("re-hashed")):
        after, size, data = _append_and_finish(tmp_path, keep_partial=True)
    assert after == 4 * MiB
    assert size == len(data)


@pytest.mark.parametrize("right", [True, False], ids=["right", "wrong"])
def test_a_hash_computed_elsewhere_is_what_the_commit_checks(tmp_path: Path, right: bool) -> None:
    """After ``hash_elsewhere`` appends only write; the state handed back by ``adopt_hash`` is
    what ``complete`` checks the digest with (the file is not hashed again), so a wrong one
    refuses the blob."""
    import hashlib

    from ocireg.errors import RegistryError

    data = os.urandom(3 * MiB)
    registry = Registry(FilesystemDriver(tmp_path), KeyedLocks(None))

    async def run() -> None:
        await registry.ensure_repository("repo")
        session = await registry.uploads.start("repo")
        registry.uploads.hash_elsewhere("repo", session)
        await registry.uploads.append("repo", session, _pieces(data), ChunkInfo())
        hasher = hashlib.sha256(data if right else data[::-1])
        registry.uploads.adopt_hash("repo", session, len(data), hasher)
        await registry.uploads.complete("repo", session, digest_bytes(data), _none(), ChunkInfo())

    with mock.patch.object(UploadStore, "_hash_file", side_effect=AssertionError("re-hashed")):
        if right:
            asyncio.run(run())
        else:
            with pytest.raises(RegistryError):
                asyncio.run(run())
    assert registry.has_blob("repo", digest_bytes(data)) is right


async def _none() -> AsyncIterator[bytes]:
    return
    yield b""


class _RemoteMemory(MemoryDriver):
    """A memory driver that says its calls are network requests (as S3's are), and whose
    writes take a while."""

    blob_check_is_request = True

    def put_content(self, path: str, data: bytes) -> None:
        time.sleep(0.05)
        super().put_content(path, data)


def test_a_client_cap_holds_while_starts_wait_for_remote_storage() -> None:
    """Starts that wait for S3 at once count each other: a client with a cap of 2 gets 2
    sessions of 10 asked for together, and 429 for the others."""
    store = UploadStore(_RemoteMemory(), KeyedLocks(None), False, Dedupe(MemoryDriver(), False),
                        SessionCaps(per_client=2))  # fmt: skip

    async def run() -> list[str | RegistryError]:
        async def start() -> str | RegistryError:
            try:
                return await store.start("repo", "client")
            except RegistryError as refused:
                return refused

        return await asyncio.gather(*(start() for _ in range(10)))

    outcomes = asyncio.run(run())
    assert sum(isinstance(each, str) for each in outcomes) == 2
    assert all(each.http_status == 429 for each in outcomes if isinstance(each, RegistryError))


class _SilentSharedSessions:
    """The shared sessions' table (PostgreSQL) behind a server that answers only once
    ``answer`` is set: each call blocks its thread until then."""

    def __init__(self) -> None:
        self.answer = threading.Event()
        self.calls: list[str] = []

    def _wait(self, call: str) -> None:
        self.calls.append(call)
        assert self.answer.wait(10), "never answered"

    def admit(self, repo: str, session: str, client: str, cap: int) -> bool:
        self._wait("admit")
        return True

    def of_client(self, client: str, started_before: float) -> set[tuple[str, str]]:
        self._wait("of_client")
        return set()

    def forget(self, sessions: Iterable[tuple[str, str]]) -> None:
        self._wait("forget")


def test_the_shared_client_cap_is_asked_off_the_event_loop() -> None:
    """With the per-client cap counted in PostgreSQL, a start and a cancel wait for the
    database on a database thread: the event loop runs other work meanwhile."""
    shared = _SilentSharedSessions()
    caps = SessionCaps(per_client=5, shared=cast(SharedUploadSessions, shared))
    store = UploadStore(MemoryDriver(), KeyedLocks(None), False, Dedupe(MemoryDriver(), False),
                        caps)  # fmt: skip

    async def ticks_while(work: Awaitable[object]) -> tuple[object, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(0.3, shared.answer.set)
        try:
            return await work, ticks
        finally:
            ticker.cancel()

    async def run() -> None:
        session, ticks = await ticks_while(store.start("repo", "client"))
        assert isinstance(session, str) and ticks >= 10, ticks
        shared.answer.clear()
        _, ticks = await ticks_while(store.cancel("repo", session))
        assert ticks >= 10, ticks

    asyncio.run(run())
    assert shared.calls == ["admit", "forget"]


def test_a_cancel_cancelled_while_the_database_answers_still_removes_the_file() -> None:
    shared = _SilentSharedSessions()
    shared.answer.set()
    caps = SessionCaps(per_client=5, shared=cast(SharedUploadSessions, shared))
    driver = MemoryDriver()
    store = UploadStore(driver, KeyedLocks(None), False, Dedupe(MemoryDriver(), False), caps)

    async def run() -> None:
        session = await store.start("repo", "client")
        assert driver.exists(layout.upload_file("repo", session))
        shared.answer.clear()
        cancelling = asyncio.create_task(store.cancel("repo", session))
        await asyncio.sleep(0.1)  # waiting for the silent database to forget the owner
        cancelling.cancel()
        asyncio.get_running_loop().call_later(0.1, shared.answer.set)
        with pytest.raises(asyncio.CancelledError):
            await cancelling
        assert not driver.exists(layout.upload_file("repo", session))

    asyncio.run(run())
    assert shared.calls == ["admit", "forget"]
