"""A pull through an on-demand mirror that falls behind the download: the download runs on
without it, and the pull is then served the rest from the stored file, byte for byte, read
into a few reused blocks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast
from unittest import mock

import httpx
import pytest

from ocireg.digests import parse_digest
from ocireg.errors import ErrorCode, RegistryError
from ocireg.ext.sync.credentials import CredentialsFile
from ocireg.ext.sync.downloads import (
    DIGEST_THREAD,
    Download,
    Downloads,
    Source,
    UpstreamError,
    _Digesting,
    _follow,
    _hash_rest,
    _in_memory,
    _misfit,
    _range_start,
)
from ocireg.ext.sync.settings import UpstreamRegistry
from ocireg.ext.sync.staging import Staging
from ocireg.ext.sync.upstream import Upstream
from ocireg.registry import uploads
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.ondemand import BlobSource
from ocireg.registry.store import Registry
from ocireg.registry.uploads import UploadStore
from ocireg.storage.filesystem import FilesystemDriver
from tests.certs import issue_server, make_ca
from tests.ext.sync.stub import stub_upstream
from tests.liveserver import live_server
from tests.rawhttp import Reader, connect, request

MiB = 1 << 20


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_pull_behind_the_download_gets_every_byte_from_the_file(
    tmp_path: Path, tls: bool
) -> None:
    extra: dict[str, Any] = {}
    verify: ssl.SSLContext | bool = False
    if tls:
        ca = make_ca(tmp_path, "ca")
        cert = issue_server(ca, tmp_path)
        extra["http"] = {"tls": {"cert": str(cert.cert_path), "key": str(cert.key_path)}}
        verify = ssl.create_default_context(cafile=ca.cert_path)
    with stub_upstream(layer_size=24 * MiB + 5, varied=True) as stub:
        extra["extensions"] = {"sync": {"registries": [{"urls": [stub.url], "onDemand": True}]}}
        with live_server(tmp_path / "mirror", extra) as server:
            (layer,) = stub.layers
            hasher, received = hashlib.sha256(), 0
            with (
                httpx.Client(base_url=server.url, timeout=60, verify=verify) as client,
                client.stream("GET", f"/v2/repo/blobs/{layer}") as answer,
            ):
                assert answer.status_code == 200
                pieces = answer.iter_raw()
                first = next(pieces)
                hasher.update(first)
                received += len(first)
                deadline = time.monotonic() + 30  # the download ends while this pull waits
                while not any(e["msg"] == "sync blob stored" for e in server.log_events()):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                for piece in pieces:
                    hasher.update(piece)
                    received += len(piece)
            assert received == len(stub.blobs[layer])
            assert f"sha256:{hasher.hexdigest()}" == layer


class _Task:
    """A download's task, finished when the test says."""

    def __init__(self) -> None:
        self.finished = threading.Event()

    def done(self) -> bool:
        return self.finished.is_set()


def _following(path: Path, size: int) -> tuple[Download, _Task]:
    """A download of ``size`` bytes being written to ``path``, as _follow sees it."""
    task = _Task()
    download = Download(cast(Any, None), "repo", cast(Any, "sha256:" + "0" * 64), cast(Any, None))
    download.size, download.task, download.staged = size, cast(Any, task), path
    return download, task


def test_a_finished_download_whose_file_is_short_fails_at_once(tmp_path: Path) -> None:
    """The follower looks past what it sent with a positioned read: no read(1) per byte sent
    (its reads move no file position), which held the event loop a blob long."""
    path = tmp_path / "upload"
    path.write_bytes(b"x" * MiB)
    download, task = _following(path, 2 * MiB)
    task.finished.set()
    looks = 0

    def counted(*args: Any) -> Any:
        nonlocal looks
        looks += 1
        return _in_memory(*args)

    async def follow() -> None:
        parts = _follow(download, 2 * MiB)
        assert await anext(parts) == b"x" * MiB
        with mock.patch("ocireg.ext.sync.downloads._in_memory", counted):
            await anext(parts)

    with pytest.raises(UpstreamError, match="ended early"):
        asyncio.run(follow())
    assert looks == 1


def _resuming(stub_url: str) -> dict[str, Any]:
    """An on-demand mirror whose attempt gives up on a stalled body after 3 s, and retries."""
    registry = {
        "urls": [stub_url],
        "onDemand": True,
        "maxRetries": 2,
        "retryDelay": "10ms",
        "syncTimeout": "3s",
    }
    return {"extensions": {"sync": {"registries": [registry]}}}


def _logged(server: Any, message: str) -> bool:
    return any(e["msg"] == message for e in server.log_events())


def _wait_for(server: Any, message: str) -> None:
    deadline = time.monotonic() + 30
    while not _logged(server, message):
        assert time.monotonic() < deadline, f"no {message!r} logged"
        time.sleep(0.05)


@pytest.mark.parametrize("ranges", [True, False], ids=["206", "ignores-range"])
def test_a_failed_attempt_keeps_what_it_wrote_and_a_follower_gets_every_byte(
    tmp_path: Path, ranges: bool
) -> None:
    """The upstream stalls half-way through the blob past syncTimeout: the attempt fails and
    keeps the half it wrote (and hashed), and the retry asks for the rest with a Range. An
    upstream that honours it answers 206 from there; one that ignores it sends the whole blob
    again (200), and the mirror skips what its file holds. The file is never cut back, so a
    slow pull that began in the first attempt is sent every byte from it, exactly, and the
    stored blob is the upstream's (its digest checked with the hash the first attempt kept)."""
    with stub_upstream(layer_size=16 * MiB + 5, varied=True) as stub:
        stub.stall, stub.stall_once, stub.ranges = 8.0, True, ranges
        (layer,) = stub.layers
        blob = stub.blobs[layer]
        with live_server(tmp_path / "mirror", _resuming(stub.url)) as server:
            port = int(server.url.rsplit(":", 1)[1])
            with connect(port) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
                sock.sendall(request(path=f"/v2/repo/blobs/{layer}"))
                _wait_for(server, "sync blob retry")  # the pull has not read a byte yet
                status, headers, body = Reader(sock).response()
            _wait_for(server, "sync blob stored")
            stored = server.root / "repo/blobs/sha256" / layer.split(":")[1]
            assert stored.read_bytes() == blob
    assert status == 200
    assert int(headers["content-length"]) == len(blob)
    assert body == blob
    (first, _), (resumed, answered) = stub.asked
    assert first == ""
    offset = int(resumed.removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= len(blob) // 2  # the retry went on from what the first attempt kept
    assert answered == (206 if ranges else 200)


def test_a_206_from_before_the_files_end_continues_the_same_file(tmp_path: Path) -> None:
    """The retry's Range is answered 206 from byte 0, not from where the file ends: the
    answer's first bytes are what the file holds, so they are skipped and the file goes on
    (as for an upstream that ignores the Range). A pull that began in the first attempt is
    sent every byte, and the blob is stored right."""
    with stub_upstream(layer_size=16 * MiB + 5, varied=True) as stub:
        stub.stall, stub.stall_once = 8.0, True
        stub.ranges, stub.from_zero = True, True
        (layer,) = stub.layers
        with live_server(tmp_path / "mirror", _resuming(stub.url)) as server:
            with (
                httpx.Client(base_url=server.url, timeout=60) as client,
                client.stream("GET", f"/v2/repo/blobs/{layer}") as answer,
            ):
                got = b"".join(answer.iter_raw())
            _wait_for(server, "sync blob stored")
            stored = server.root / "repo/blobs/sha256" / layer.split(":")[1]
            assert stored.read_bytes() == stub.blobs[layer]
    assert answer.status_code == 200
    assert got == stub.blobs[layer]
    (first, _), (resumed, partial) = stub.asked  # no third request: nothing started again
    assert first == "" and resumed.startswith("bytes=") and partial == 206


def test_an_answer_that_does_not_continue_the_file_starts_again() -> None:
    """A 206 from past the file's end, or a blob of another size, cannot continue the file:
    the download starts again (in a new file). A 206 from before its end can (the bytes the
    file holds are skipped)."""

    def answer(status: int, headers: dict[str, str]) -> httpx.Response:
        return httpx.Response(status, headers=headers)

    fits = answer(206, {"content-range": "bytes 100-999/1000"})
    assert _misfit(fits, 100, 1000, 1000) is None
    before = answer(206, {"content-range": "bytes 0-999/1000"})
    assert _misfit(before, 100, 1000, 1000) is None
    past = answer(206, {"content-range": "bytes 101-999/1000"})
    assert "from 101, not 100" in (_misfit(past, 100, 1000, 1000) or "")
    garbled = answer(206, {"content-range": "items 100-999/1000"})
    assert "from None" in (_misfit(garbled, 100, 1000, 1000) or "")
    assert _misfit(answer(200, {}), 100, 1000, 1000) is None  # ignored the Range: skipped
    other = _misfit(answer(200, {}), 100, 2000, 1000)
    assert other is not None and "2000 bytes now, not 1000" in other


def test_a_range_unit_is_read_whatever_its_case() -> None:
    """RFC 9110 (14.1): range units are case-insensitive."""
    assert _range_start("Bytes 5-9/10") == 5
    assert _range_start("BYTES 0-9/10") == 0
    assert _range_start("items 5-9/10") is None


class _Counters:
    def add(self, kind: str, upstream: str, amount: int = 1) -> None:
        pass


@contextlib.asynccontextmanager
async def _downloading(
    stub_url: str, root: Path, staging: Staging | None = None
) -> AsyncIterator[tuple[Downloads, Registry, Source]]:
    """Downloads into a filesystem registry at ``root`` from the stub, retrying after 10 ms
    an attempt whose body stalls past 2 s."""
    settings = UpstreamRegistry.model_validate(
        {
            "urls": [stub_url],
            "onDemand": True,
            "maxRetries": 2,
            "retryDelay": "10ms",
            "syncTimeout": "2s",
        }
    )
    registry = Registry(FilesystemDriver(root), KeyedLocks(None))
    source = Source(Upstream(settings, CredentialsFile(None)), "repo")
    try:
        yield Downloads(_Counters(), staging), registry, source
    finally:
        await source.upstream.close()


async def _downloaded(
    stub_url: str, layer: str, root: Path, staging: Staging | None = None
) -> tuple[Download, bool]:
    """One download of ``layer`` into a registry at ``root``, run to its end (a failure is kept
    in ``download.error``), and whether the blob is stored then."""
    async with _downloading(stub_url, root, staging) as (downloads, registry, source):
        download = downloads.start(registry, "repo", parse_digest(layer), source)
        assert download.task is not None
        await asyncio.shield(download.task)
        return download, registry.has_blob("repo", download.digest)


@pytest.mark.parametrize("size", [3 * MiB, 9 * MiB + 5], ids=["small", "hashed-beside"])
def test_an_attempt_that_failed_after_its_last_byte_asks_for_nothing_more(
    tmp_path: Path, size: int
) -> None:
    """The attempt's body is written whole, then it fails (a syncTimeout as the body ends):
    the retry sends no Range from the blob's end (upstreams answer it 416, every time), and
    the whole file is committed, its digest checked (a large blob's with the hash its thread
    began, which ends)."""
    appended = UploadStore.append

    async def late_failure(self: UploadStore, *args: Any, **kwargs: Any) -> int:
        written = await appended(self, *args, **kwargs)
        raise httpx.ReadTimeout("the deadline, as the last byte came")
        return written

    async def run(stub_url: str, layer: str) -> Download:
        async with _downloading(stub_url, tmp_path) as (downloads, registry, source):
            with mock.patch.object(UploadStore, "append", late_failure):
                download = downloads.start(registry, "repo", parse_digest(layer), source)
                assert download.task is not None
                await asyncio.shield(download.task)
            assert registry.has_blob("repo", download.digest)
        return download

    with stub_upstream(layer_size=size, varied=True) as stub, _digest_threads() as threads:
        stub.ranges = True
        (layer,) = stub.layers
        download = asyncio.run(run(stub.url, layer))
        stored = tmp_path / "repo/blobs/sha256" / layer.split(":")[1]
        assert stored.read_bytes() == stub.blobs[layer]
    assert download.error is None
    assert stub.asked == [("", 200)]
    assert len(threads) == (size >= 4 * MiB) and _ended(threads)


@pytest.mark.parametrize("size", [3 * MiB + 7, 9 * MiB + 7], ids=["small", "large"])
def test_a_416_that_says_the_file_holds_the_blob_ends_the_download(
    tmp_path: Path, size: int
) -> None:
    """A staged file that holds the whole blob before its size is known: the Range from its
    end is answered 416 ``bytes */SIZE``; SIZE is what the file holds, so nothing is missing
    and the blob is stored (digest checked by the upload path: no body came, no thread hashed
    it). A 416 for another size starts again (a large blob's new file hashed by a thread)."""
    staging = Staging(str(tmp_path / "staging"))

    async def run(stub_url: str, layer: str, prefilled: Path) -> Download:
        root = tmp_path / "root"
        async with _downloading(stub_url, root, staging) as (downloads, registry, source):
            with mock.patch.object(staging, "path", lambda _: prefilled):
                download = downloads.start(registry, "repo", parse_digest(layer), source)
                assert download.task is not None
                await asyncio.shield(download.task)
            assert registry.has_blob("repo", download.digest)
        return download

    try:
        with stub_upstream(layer_size=size, varied=True) as stub, _digest_threads() as threads:
            stub.ranges = True
            (layer,) = stub.layers
            whole = tmp_path / "whole"
            whole.write_bytes(stub.blobs[layer])
            download = asyncio.run(run(stub.url, layer, whole))
            assert download.error is None and download.size == len(stub.blobs[layer])
            assert stub.asked == [(f"bytes={len(stub.blobs[layer])}-", 416)]
            assert not threads
            stub.asked.clear()
            longer = tmp_path / "longer"
            longer.write_bytes(stub.blobs[layer] + b"more")
            download = asyncio.run(run(stub.url, layer, longer))
            assert download.error is None
            # the Range past the blob's end answered 416 */SIZE: started again, from byte 0
            assert stub.asked == [(f"bytes={len(stub.blobs[layer]) + 4}-", 416), ("", 200)]
            assert len(threads) == (size >= 4 * MiB) and _ended(threads)
    finally:
        staging.close()


def _read(source: BlobSource) -> Any:
    """What a reader of ``source`` is sent."""

    async def read() -> bytes:
        got = bytearray()
        assert source.chunks is not None
        async for part in source.chunks:
            got += part
            await asyncio.sleep(0.4)  # a slow client: far more than RECENT pieces behind
        return bytes(got)

    return read()


def test_a_pull_of_a_download_that_starts_again_gets_every_byte(tmp_path: Path) -> None:
    """The retry's Range is answered 206 from past where the file ends (a broken upstream):
    that cannot continue the file, so the blob starts again in a new one. A pull that decided
    its headers in the first attempt, opening the file only after the first was discarded,
    reads the new file; one far behind, at the end of the old file, goes on in the new one:
    every byte, right."""

    async def run(stub_url: str, layer: str) -> tuple[bytes, bytes]:
        async with _downloading(stub_url, tmp_path) as (downloads, registry, source):
            return await both(downloads, registry, source, layer)

    async def both(
        downloads: Downloads, registry: Registry, source: Source, layer: str
    ) -> tuple[bytes, bytes]:
        download = downloads.start(registry, "repo", parse_digest(layer), source)
        late, behind = await downloads.serve(download), await downloads.serve(download)
        assert late is not None and behind is not None
        reading = asyncio.create_task(_read(behind))
        first = download.session
        while download.session == first:  # started again: the first session file is gone
            assert download.task is not None and not download.task.done()
            await asyncio.sleep(0.05)
        opened_late = await _read(late)
        assert download.task is not None
        await asyncio.shield(download.task)
        assert download.error is None
        return opened_late, await reading

    with stub_upstream(layer_size=8 * MiB + 5, varied=True) as stub:
        stub.stall, stub.stall_once, stub.ranges, stub.ahead = 3.0, True, True, 1
        (layer,) = stub.layers
        opened_late, behind = asyncio.run(run(stub.url, layer))
        blob = stub.blobs[layer]
    assert opened_late == blob
    assert behind == blob
    (first, _), (resumed, partial), (again, whole) = stub.asked
    assert first == "" and resumed.startswith("bytes=") and partial == 206
    assert again == "" and whole == 200  # from the start, in a new file: no Range


@pytest.mark.parametrize("staged", [False, True], ids=["upload-file", "download-dir"])
def test_a_download_is_committed_with_the_hash_computed_beside_it(
    tmp_path: Path, staged: bool
) -> None:
    """The digest is computed by the download's own thread as the file grows and handed to
    the upload path, which checks it: the file is not hashed again at commit, and a wrong
    hash would fail the check (the blob would not be stored)."""

    async def run(stub_url: str, layer: str) -> Download:
        staging = Staging(str(tmp_path / "staging")) if staged else None
        try:
            download, stored = await _downloaded(stub_url, layer, tmp_path / "root", staging)
        finally:
            if staging is not None:
                staging.close()
        assert stored
        return download

    unused = mock.patch.object(UploadStore, "_hash_file", side_effect=AssertionError("hashed"))
    hashers: list[object] = []
    write_and_hash = uploads._write_and_hash

    def writing(writer: Any, hasher: Any, data: bytes, progress: Any) -> None:
        hashers.append(hasher)
        write_and_hash(writer, hasher, data, progress)

    written = mock.patch.object(uploads, "_write_and_hash", writing)
    upstream, recorded = stub_upstream(layer_size=9 * MiB, varied=True), _digest_threads()
    with upstream as stub, unused, written, recorded as threads:
        (layer,) = stub.layers
        download = asyncio.run(run(stub.url, layer))
        stored = tmp_path / "root/repo/blobs/sha256" / layer.split(":")[1]
        assert stored.read_bytes() == stub.blobs[layer]
    assert download.error is None
    assert download.digesting is None  # its thread was told to stop
    assert len(threads) == 1 and _ended(threads)
    # the upload path wrote without hashing (a staged file is written by the download itself)
    assert bool(hashers) is not staged and not any(hashers)


def test_the_digest_thread_follows_a_growing_file_and_refuses_a_short_one(
    tmp_path: Path,
) -> None:
    """The thread hashes what the file holds as it grows (told, or looking again on its own);
    ``finish`` gives the hash of the size it is given, and none for a file that ends short of
    it. The thread ends once told to stop."""
    data = os.urandom(5 * MiB + 17)
    path = tmp_path / "blob"
    path.write_bytes(b"")

    async def run() -> tuple[str | None, bool, _Digesting]:
        digesting = _Digesting(path)
        assert digesting.start()
        with path.open("ab") as handle:
            for at in range(0, len(data), MiB):
                handle.write(data[at : at + MiB])
                handle.flush()
                if at % (2 * MiB) == 0:
                    digesting.more.set()  # the others: found by its own look
                await asyncio.sleep(0)
        deadline = time.monotonic() + 30  # the thread catches up (a guard against a hang)
        while digesting.published[0] < len(data) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert digesting.published[0] == len(data)
        hasher = await digesting.finish(len(data))
        short = _Digesting(path)
        refused = await short.finish(len(data) + 1) is None
        return (hasher.hexdigest() if hasher else None), refused, digesting

    found, refused, digesting = asyncio.run(run())
    assert found == hashlib.sha256(data).hexdigest()
    assert refused
    assert _ended([digesting.thread])


class _Starved:
    """A hasher whose digest thread is starved after its first block (as nice 19 is on a
    busy host): the thread's own copy blocks in its second update until ``running`` is set;
    the copies it publishes do not."""

    def __init__(self, inner: Any, running: threading.Event, thread_owned: bool) -> None:
        self.inner, self.running, self.thread_owned, self.updates = inner, running, thread_owned, 0

    def update(self, data: bytes) -> None:
        self.updates += 1
        if self.thread_owned and self.updates > 1:
            self.running.wait()
        self.inner.update(data)

    def hexdigest(self) -> str:
        return cast(str, self.inner.hexdigest())

    def copy(self) -> _Starved:
        return _Starved(self.inner.copy(), self.running, not self.thread_owned)


def test_the_hash_is_finished_without_waiting_for_a_starved_thread(tmp_path: Path) -> None:
    """Once every byte is in, ``finish`` does not wait for the low-priority thread (which a
    busy host may starve for seconds): it hashes the rest from the thread's last published
    state at normal priority; the thread, told to stop, ends when it runs again."""
    data = os.urandom(9 * MiB + 3)
    path = tmp_path / "blob"
    path.write_bytes(data)
    running = threading.Event()

    async def run() -> tuple[str | None, _Digesting]:
        digesting = _Digesting(path)
        digesting.published = (0, _Starved(hashlib.sha256(), running, thread_owned=False))
        assert digesting.start()
        deadline = time.monotonic() + 30  # its first block is hashed (a guard against a hang)
        while digesting.published[0] == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert 0 < digesting.published[0] < len(data)
        # were the thread waited for, this would never end: a failure, not a hang
        hasher = await asyncio.wait_for(digesting.finish(len(data)), 60)
        return (hasher.hexdigest() if hasher else None), digesting

    try:
        found, digesting = asyncio.run(run())
        assert found == hashlib.sha256(data).hexdigest()
        assert digesting.thread.is_alive()  # still starved, and nobody waited for it
    finally:
        running.set()
    assert _ended([digesting.thread])


def test_the_rest_of_a_hash_stops_once_abandoned(tmp_path: Path) -> None:
    """A download cancelled while ``finish`` hashes the rest (at shutdown) gives up its worker
    thread's call, which would go on reading the discarded file: the rest is hashed only while
    the hash is wanted, looked at before each block, and an abandoned ``_Digesting`` hashes
    nothing more."""
    data = os.urandom(3 * MiB)
    path = tmp_path / "blob"
    path.write_bytes(data)
    looks: list[int] = []

    def abandoned_after_one_block() -> bool:
        looks.append(1)
        return len(looks) > 1

    assert _hash_rest(path, hashlib.sha256(), 0, len(data), abandoned_after_one_block) is None
    assert len(looks) == 2  # one block hashed, then it stopped
    whole = _hash_rest(path, hashlib.sha256(), 0, len(data), lambda: False)
    assert whole is not None and whole.hexdigest() == hashlib.sha256(data).hexdigest()

    async def finish_abandoned() -> object:
        digesting = _Digesting(path)  # not started: ``finish`` would hash the whole file
        digesting.abandon()
        return await digesting.finish(len(data))

    assert asyncio.run(finish_abandoned()) is None


def test_the_digest_thread_ends_with_its_event_loop(tmp_path: Path) -> None:
    """A thread whose download never finished (the server shut down) ends once its event
    loop is closed, instead of polling the file for ever."""
    path = tmp_path / "blob"
    path.write_bytes(b"some")

    async def run() -> _Digesting:
        digesting = _Digesting(path)
        assert digesting.start()
        return digesting

    digesting = asyncio.run(run())  # closes the loop
    assert _ended([digesting.thread])


def test_a_download_whose_digest_thread_cannot_start_is_hashed_by_the_upload_path(
    tmp_path: Path,
) -> None:
    """A thread that cannot be started (out of threads) does not fail the download: the upload
    path goes on hashing the file as it is written."""

    unused = mock.patch.object(UploadStore, "_hash_file", side_effect=AssertionError("hashed"))
    threads_fail = _digest_threads(fail=True)
    with stub_upstream(layer_size=9 * MiB, varied=True) as stub, unused, threads_fail as threads:
        (layer,) = stub.layers
        download, stored = asyncio.run(_downloaded(stub.url, layer, tmp_path))
    assert stored
    assert download.error is None and not threads


def test_a_download_staged_on_another_filesystem_is_hashed_once(tmp_path: Path) -> None:
    """A staged file that cannot be linked into storage (another filesystem) is copied through
    the upload path, which hashes it: no thread hashes it beside the download as well."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's directory")
    staging = Staging(str(shm / f"ocireg-test-{os.getpid()}-{id(tmp_path)}"))

    try:
        with stub_upstream(layer_size=9 * MiB, varied=True) as stub, _digest_threads() as threads:
            (layer,) = stub.layers
            download, stored = asyncio.run(_downloaded(stub.url, layer, tmp_path / "root", staging))
    finally:
        staging.close()
        shutil.rmtree(staging.root, ignore_errors=True)
    assert stored
    assert download.error is None and not threads


def test_a_cancelled_download_ends_its_digest_thread(tmp_path: Path) -> None:
    """A download cancelled while its body comes (its blob's thread running) stores nothing,
    and the thread ends."""

    async def run(stub_url: str, layer: str) -> Download:
        async with _downloading(stub_url, tmp_path) as (downloads, registry, source):
            download = downloads.start(registry, "repo", parse_digest(layer), source)
            assert download.task is not None
            deadline = time.monotonic() + 30  # the body's first half is in (a hang's guard)
            while download.digesting is None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert download.digesting is not None
            download.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await download.task
            assert not registry.has_blob("repo", download.digest)
        return download

    with stub_upstream(layer_size=9 * MiB, varied=True) as stub, _digest_threads() as threads:
        stub.stall = 1.0  # the body stops half-way: cancelled meanwhile
        (layer,) = stub.layers
        download = asyncio.run(run(stub.url, layer))
    assert isinstance(download.error, asyncio.CancelledError)
    assert len(threads) == 1 and _ended(threads)


def test_a_large_blob_whose_bytes_do_not_match_its_digest_is_not_stored(tmp_path: Path) -> None:
    """The hash computed beside the download is checked like any other: an upstream that sends
    other bytes (of the right size) under the digest fails the download, and nothing is
    stored."""

    with stub_upstream(layer_size=9 * MiB, varied=True) as stub, _digest_threads() as threads:
        (layer,) = stub.layers
        right = stub.blobs[layer]
        stub.blobs[layer] = right[: 5 * MiB] + bytes([right[5 * MiB] ^ 1]) + right[5 * MiB + 1 :]
        download, stored = asyncio.run(_downloaded(stub.url, layer, tmp_path))
    assert not stored
    assert isinstance(download.error, RegistryError)
    assert download.error.code is ErrorCode.DIGEST_INVALID
    assert not (tmp_path / "repo/blobs/sha256" / layer.split(":")[1]).exists()
    assert len(threads) == 1 and _ended(threads)


@contextlib.contextmanager
def _digest_threads(fail: bool = False) -> Iterator[list[threading.Thread]]:
    """The digest threads started meanwhile (none start when ``fail``: out of threads)."""
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def starting(thread: threading.Thread) -> None:
        if thread.name != DIGEST_THREAD:
            start(thread)
            return
        if fail:
            raise RuntimeError("can't start new thread")
        start(thread)
        started.append(thread)

    with mock.patch.object(threading.Thread, "start", starting):
        yield started


def _ended(threads: list[threading.Thread]) -> bool:
    """Whether every thread has ended (each given 10 s: a guard against a hang, no timing)."""
    for thread in threads:
        thread.join(10)
    return not any(thread.is_alive() for thread in threads)
