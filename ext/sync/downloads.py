"""Blob downloads from an upstream, one per blob at a time, shared by everyone who wants it.

A download writes through the registry's normal upload path (a session file, committed by
digest), so a blob becomes visible only whole and verified. A large blob is hashed beside the
download by a thread of low priority that follows the file (``_Digesting``: the pull that
follows the download is not held up by the hash; the rest is hashed at normal priority once
every byte is in), a small one as it is written. A failed attempt keeps what it wrote (and the
hash of it), and the next resumes from there with a ``Range`` request, up to ``maxRetries``
times with back-off; one whose file holds the whole blob asks for nothing. The file is never
cut back: an answer that sends again bytes the file holds (an upstream that ignores the
``Range``: 200, or a 206 from before the file's end) is read past them, and one that cannot
continue the file (a 206 from past its end, another size) starts the blob again in a new upload
file, so the bytes of a file a reader follows never change under it; at its end, the reader
goes on in the new file (the digest pins the bytes at every offset).

Readers (pulls that missed the blob) get the bytes while they are stored: the last few pieces
received are kept in memory, and a reader that keeps up is served from them (the pieces that go
to the file, no copy, no read back); one that falls behind reads the session file, from an open
handle. A slow or departed client does not slow or stop the download. If the download fails,
every reader's stream is cut short (the client sees a body shorter than its Content-Length)
and nothing is stored. Following the download needs a storage driver with local paths
(filesystem); on others a reader waits for the blob to be stored and is then served it as a
stored blob.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import BinaryIO, cast

import anyio.to_thread
import httpx

from ocireg.digests import CANONICAL, Digest, Hasher, new_hasher
from ocireg.logs import event
from ocireg.registry import layout
from ocireg.registry.ondemand import BlobSource
from ocireg.registry.store import Registry
from ocireg.registry.uploads import ChunkInfo

from .blocks import BlockPool
from .counters import Counting
from .staging import Staging
from .upstream import NotUpstream, Upstream, UpstreamError

log = logging.getLogger("ocireg.sync")
CHUNK = 1 << 20
_POLL = 0.5  # a reader looks at the file at least this often, whatever it was told
RECENT = 2  # pieces kept for readers that keep up (8 MiB with the upstream client's blocks)
_READ_BLOCKS = 4  # blocks a reader behind reads the file into, reused (blocks.py)


@dataclass(frozen=True)
class Source:
    """Where a local repository's content comes from."""

    upstream: Upstream
    repo: str  # the upstream repository's name


@dataclass
class Download:
    registry: Registry
    repo: str
    digest: Digest
    source: Source
    session: str | None = None
    staged: Path | None = None  # the file in downloadDir, when there is one
    size: int | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)  # size known, or failed
    moved: asyncio.Event = field(default_factory=asyncio.Event)  # bytes arrived
    task: asyncio.Task[None] | None = None
    error: BaseException | None = None
    generation: int = 0  # counts the times the blob started again in a new file
    # the last pieces received, with their offsets: what readers that keep up are served from
    recent: deque[tuple[int, bytes]] = field(default_factory=lambda: deque(maxlen=RECENT))
    digesting: _Digesting | None = None  # the hash of the file written now, when one runs

    def nudge(self) -> None:
        self.moved.set()
        self.moved = asyncio.Event()


class Downloads:
    def __init__(self, counters: Counting, staging: Staging | None = None) -> None:
        self._running: dict[tuple[int, str, str], Download] = {}
        self.counters = counters
        self.staging = staging

    def _key(self, registry: Registry, repo: str, digest: Digest) -> tuple[int, str, str]:
        return (id(registry), repo, str(digest))

    def start(self, registry: Registry, repo: str, digest: Digest, source: Source) -> Download:
        """The download of this blob into ``repo``: the one running, or a new one."""
        key = self._key(registry, repo, digest)
        running = self._running.get(key)
        if running is not None:
            return running
        download = Download(registry, repo, digest, source)
        download.task = asyncio.create_task(self._run(download))
        self._running[key] = download
        download.task.add_done_callback(lambda _: self._running.pop(key, None))
        return download

    def running(self, registry: Registry, repo: str, digest: Digest) -> Download | None:
        """The download of this blob into ``repo`` if one runs (an image being stored)."""
        return self._running.get(self._key(registry, repo, digest))

    async def ensure(self, registry: Registry, repo: str, digest: Digest, source: Source) -> None:
        """Return once the blob is stored in ``repo``; UpstreamError if it cannot be."""
        if await registry.off_loop(registry.has_blob, repo, digest):
            return
        download = self.start(registry, repo, digest, source)
        assert download.task is not None
        await asyncio.shield(download.task)
        if download.error is not None:
            raise UpstreamError(f"blob {digest}: {download.error}")

    async def serve(self, download: Download) -> BlobSource | None:
        """A reader of the download: its size and bytes as they arrive; None when it failed
        before a byte came."""
        await download.started.wait()
        if download.error is not None or download.size is None:
            return None
        path = _growing_file(download)
        if path is None:  # no file to follow: wait for the stored blob
            assert download.task is not None
            await asyncio.shield(download.task)
            return None if download.error else BlobSource(download.size, None)
        if not path.exists():  # committed already (the session file moved): stored
            return BlobSource(download.size, None)
        size = download.size
        return BlobSource(size, _follow(download, size))

    # -- the download itself --------------------------------------------------------------
    async def _run(self, download: Download) -> None:
        registry, repo = download.registry, download.repo
        settings = download.source.upstream.settings
        begun = time.perf_counter()
        try:
            if await self._taken_from_storage(download):
                return
            if self.staging is not None:
                download.staged = self.staging.path(download.digest)
                download.staged.touch()
            else:
                await registry.ensure_repository(repo)
                download.session = await registry.uploads.start(repo)
            attempt = 0
            while True:
                failure = await self._attempt(download)
                if failure is None:
                    break
                if attempt >= settings.maxRetries or isinstance(failure, NotUpstream):
                    raise failure
                delay = settings.retryDelay * (2**attempt)
                if settings.maxRetryDelay is not None:
                    delay = min(delay, settings.maxRetryDelay)
                event(
                    log,
                    logging.WARNING,
                    "sync blob retry",
                    repo=repo,
                    digest=str(download.digest),
                    failure=str(failure),
                    attempt=attempt + 1,
                    delay=delay,
                )
                await asyncio.sleep(delay)
                attempt += 1
            hashed = await _digested(download)
            if download.staged is not None:
                await _commit_staged(download, download.staged, hashed)
            else:
                assert download.session is not None
                if hashed is not None:
                    registry.uploads.adopt_hash(repo, download.session, *hashed)
                await registry.uploads.complete(
                    repo, download.session, download.digest, _nothing(), ChunkInfo()
                )
        except BaseException as error:
            download.error = error
            if not isinstance(error, NotUpstream):  # a blob it does not have is no failure
                self.counters.add("failures", download.source.upstream.urls[0])
            if download.session is not None:
                await registry.uploads.discard(repo, download.session)
            if download.staged is not None:
                _remove(download.staged)
            if isinstance(error, asyncio.CancelledError):
                raise
            event(
                log,
                logging.ERROR,
                "sync blob failed",
                repo=repo,
                digest=str(download.digest),
                error=str(error),
            )
        else:
            self.counters.add("blobs", download.source.upstream.urls[0])
            self.counters.add("bytes", download.source.upstream.urls[0], download.size or 0)
            event(
                log,
                logging.INFO,
                "sync blob stored",
                repo=repo,
                digest=str(download.digest),
                size=download.size,
                seconds=round(time.perf_counter() - begun, 3),
            )
        finally:
            _stop_digesting(download)
            download.recent.clear()  # stored or failed: readers behind read the file
            download.started.set()
            download.nudge()

    async def _taken_from_storage(self, download: Download) -> bool:
        """Whether the blob's bytes were in this root's dedupe store already (another
        repository's), and ``download.repo`` now has them from there, nothing fetched. A
        failure to look (storage unreachable, a repository limit) or to take them (GC
        removed them meanwhile) is no download failure: the blob is fetched instead."""
        try:
            size = await download.registry.take_stored(download.repo, download.digest)
        except Exception as error:
            log.debug("sync: blob %s not taken from storage: %r", download.digest, error)
            return False
        if size is None:
            return False
        download.size = size
        self.counters.add("local_blobs", download.source.upstream.urls[0])
        event(
            log,
            logging.INFO,
            "sync blob taken from storage",
            repo=download.repo,
            digest=str(download.digest),
            size=size,
        )
        return True

    async def _attempt(self, download: Download) -> BaseException | None:
        """One request for what is still missing; the failure, or None when the upstream sent
        everything. A connection that breaks keeps what arrived (the next attempt resumes)."""
        registry, repo, session = download.registry, download.repo, download.session
        staged = download.staged
        have = await _held(download)
        if download.size is not None and have >= download.size:
            # an attempt that failed after its last byte was written (a syncTimeout as the
            # body ended): nothing is missing, and a Range from the end would be answered 416.
            # The digest check when the blob is committed decides whether the bytes are right.
            return None
        source = download.source
        misfit: str | None = None
        broken: list[BaseException] = []
        try:
            async with source.upstream.blob(source.repo, str(download.digest), have) as answer:
                total = _total_size(answer, have)
                if answer.status_code == 416:
                    misfit = _unsatisfiable(download, answer, have)
                    if misfit is None:
                        return None  # the file holds the whole blob
                else:
                    misfit = _misfit(answer, have, total, download.size)
                if misfit is None:
                    if download.size is None:
                        download.size = total
                    download.started.set()
                    _start_digesting(download)
                    # what the file holds is skipped where the answer sends it again (an
                    # upstream that ignored the Range, or a 206 from before the file's end):
                    # the digest pins those bytes, and the whole file is checked at the end
                    chunks = _received(answer, _skip(answer, have), have, download, broken)
                    if staged is not None:
                        await _write(staged, chunks)
                    else:
                        assert session is not None
                        await registry.uploads.append(
                            repo, session, chunks, ChunkInfo(), keep_partial=True
                        )
        except (UpstreamError, httpx.HTTPError) as error:
            return error
        if misfit is not None:
            await _start_over(download)
            return UpstreamError(misfit)
        if broken:
            return broken[0]
        if download.size is not None and await _held(download) < download.size:
            return UpstreamError("the upstream sent less than the blob's size")
        return None


async def _held(download: Download) -> int:
    """The bytes the download's file holds."""
    if download.staged is not None:
        return download.staged.stat().st_size
    assert download.session is not None
    return await download.registry.uploads.size(download.repo, download.session)


def _misfit(answer: httpx.Response, have: int, total: int | None, size: int | None) -> str | None:
    """Why the answer cannot continue a file holding ``have`` bytes of a blob of ``size``
    (None: it can; a 206 from before the file's end is read past what the file holds)."""
    if size is not None and total is not None and total != size:
        return f"the upstream's blob is {total} bytes now, not {size}: starting again"
    if answer.status_code == 206:
        start = _range_start(answer.headers.get("content-range", ""))
        if start is None or start > have:
            return f"the upstream sent bytes from {start}, not {have}: starting again"
    return None


def _skip(answer: httpx.Response, have: int) -> int:
    """The answer's first bytes that the file holds already (the answer fits: _misfit)."""
    if answer.status_code == 206:
        return have - (_range_start(answer.headers.get("content-range", "")) or 0)
    return have  # the Range was ignored: the whole blob


def _unsatisfiable(download: Download, answer: httpx.Response, have: int) -> str | None:
    """A 416 to the Range from ``have``: None when it says the blob is ``have`` bytes (the
    file holds it all; as ocireg and docker-registry answer a Range from a blob's end), else
    why the file cannot be continued."""
    total = answer.headers.get("content-range", "").strip().rpartition("/")[2]
    if total.isdigit() and int(total) == have and download.size in (None, have):
        download.size = have
        download.started.set()
        return None
    return f"the upstream cannot send bytes from {have} of a blob of {total or '?'}: starting again"


def _range_start(content_range: str) -> int | None:
    """The first byte of ``bytes FIRST-LAST/TOTAL`` (None if it is not that). Range units
    are case-insensitive (RFC 9110, 14.1)."""
    unit, _, spec = content_range.strip().partition(" ")
    first = spec.split("-", 1)[0]
    return int(first) if unit.lower() == "bytes" and first.isdigit() else None


async def _start_over(download: Download) -> None:
    """Begin the blob again in a new file, for an answer that cannot continue the old one (a
    206 from past its end, a blob of another size). The old file is left to readers that
    follow it (unlinked, never cut back); at its end they go on in the new file (the digest
    pins the bytes: the same at every offset, or the download fails)."""
    download.recent.clear()
    download.size = None  # the next answer's; readers that come meanwhile wait for it
    download.started = asyncio.Event()
    _stop_digesting(download)
    if download.staged is not None:
        _remove(download.staged)
        download.staged.touch()
        download.generation += 1
        return
    registry, repo, old = download.registry, download.repo, download.session
    assert old is not None
    download.session = await registry.uploads.start(repo)
    download.generation += 1  # with the new file in place: a reader that sees it opens that
    await registry.uploads.discard(repo, old)


def _growing_file(download: Download) -> Path | None:
    """The local file the download is written to (None: no local file to follow)."""
    if download.staged is not None:
        return download.staged
    if download.session is None:
        return None
    return download.registry.driver.local_path(layout.upload_file(download.repo, download.session))


async def _write(staged: Path, chunks: AsyncIterator[bytes]) -> None:
    """Append to the staged file as the bytes come; each piece lands whole (no batching), so
    a break or a syncTimeout keeps exactly what arrived for the next attempt."""
    with _appending(staged) as handle:
        async for chunk in chunks:
            handle.write(chunk)
            handle.flush()


def _appending(path: Path) -> BinaryIO:
    return open(path, "ab")


async def _commit_staged(
    download: Download, staged: Path, hashed: tuple[int, Hasher] | None
) -> None:
    """Store the staged blob through the upload path, which checks its digest (with the
    hash computed beside the download, when the file is linked in). On the same
    filesystem as a local storage root the file is linked in, not copied; readers following
    the staged file keep reading it until they are done."""
    registry, repo = download.registry, download.repo
    await registry.ensure_repository(repo)
    download.session = session = await registry.uploads.start(repo)
    target = registry.driver.local_path(layout.upload_file(repo, session))
    linked = target is not None and _link(staged, target)
    if linked and hashed is not None:
        registry.uploads.adopt_hash(repo, session, *hashed)
    chunks = _nothing() if linked else _read(staged)
    try:
        await registry.uploads.complete(repo, session, download.digest, chunks, ChunkInfo())
    finally:
        _remove(staged)


def _link(staged: Path, target: Path) -> bool:
    """Put the staged file in place of the (empty) upload file if both are on one
    filesystem; False when they are not."""
    if target.stat().st_dev != staged.stat().st_dev:
        return False
    target.unlink()
    os.link(staged, target)
    return True


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _pieces(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


async def _read(path: Path) -> AsyncIterator[bytes]:
    for chunk in _pieces(path):
        yield chunk


def _total_size(answer: httpx.Response, have: int) -> int | None:
    content_range = answer.headers.get("content-range", "")
    if answer.status_code == 206 and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = answer.headers.get("content-length")
    if length is None or not length.isdigit():
        return None
    return int(length) + (have if answer.status_code == 206 else 0)


async def _received(
    answer: httpx.Response,
    skip: int,
    offset: int,
    download: Download,
    broken: list[BaseException],
) -> AsyncIterator[bytes]:
    """The answer's bytes after ``skip`` of them, the first at ``offset`` in the file; a broken
    connection ends them early (noted in ``broken``) instead of failing the append, which keeps
    what was written."""
    encoded = answer.headers.get("content-encoding", "identity").lower() != "identity"
    # the network's pieces as they come (no re-chunking copy); decoded only if the upstream
    # sent a Content-Encoding, which registries do not do for blobs
    pieces = answer.aiter_bytes() if encoded else answer.aiter_raw()
    try:
        async for chunk in pieces:
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk, skip = chunk[skip:], 0
            download.recent.append((offset, chunk))
            offset += len(chunk)
            yield chunk
            download.nudge()
            if download.digesting is not None:
                download.digesting.more.set()
    except httpx.HTTPError as error:
        broken.append(error)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


def _open(download: Download) -> io.FileIO:
    """The file the download writes now (a new one if it started again since a reader was
    given its size: the same bytes), or the blob it became if it was committed meanwhile. Any
    failure is the download's (UpstreamError), never a bare OSError."""
    if download.error is not None:
        raise UpstreamError(f"blob {download.digest}: {download.error}")
    for where in (_growing_file, _committed):  # the second only if the first is gone
        path = where(download)
        if path is None:
            continue
        try:
            return open(path, "rb", buffering=0)
        except FileNotFoundError:
            continue
        except OSError as error:
            raise UpstreamError(f"blob {download.digest}: {error}") from None
    raise UpstreamError(f"blob {download.digest}: its file is gone")


def _committed(download: Download) -> Path | None:
    return download.registry.driver.local_path(layout.blob_file(download.repo, download.digest))


def _in_memory(download: Download, at: int, most: int) -> memoryview | None:
    """The received piece holding byte ``at`` (from ``at`` on, ``most`` bytes at most), if it
    is still kept; a view, not a copy."""
    for offset, piece in download.recent:
        if offset <= at < offset + len(piece):
            return memoryview(piece)[at - offset : at - offset + most]
    return None


async def _follow(download: Download, size: int) -> AsyncGenerator[bytes | memoryview, None]:
    """The download's bytes as they arrive (from memory while it keeps up, else from its
    session file), until ``size`` of them. The file is opened on the first read: a HEAD, which
    reads nothing, opens nothing. A piece is in memory only once it is on its way to the file,
    and its bytes are those the file gets. What is read from the file goes into a few reused
    blocks (a reader behind the download reads most of a large blob so).

    Sent as copies even where the connection offers zero-copy sends: a client on the same
    host (a CI runner, a node-local mirror; the bench's) spends more CPU receiving pages that
    ``sendfile`` handed over than bytes a ``write`` copied, and during a first pull that
    client is what sets the pace (``bench/RESULTS.md``: 1.68x of the direct pull with
    ``sendfile``, 1.51x with copies). A stored blob is still sent by ``sendfile``.

    The file is never cut back under a reader: a failed attempt keeps what it wrote, and
    starting again takes a new file."""
    sent = 0
    blocks = BlockPool(CHUNK, _READ_BLOCKS)
    with _Following(download) as following:
        while sent < size:
            chunk: bytes | memoryview | None = _in_memory(download, sent, size - sent)
            if chunk is None:
                chunk = _read_at(following.handle, sent, blocks.take(), size - sent)
            if chunk:
                sent += len(chunk)
                yield chunk
                continue
            if not following.moved_on():
                await _more(download, following.handle.fileno(), sent)


class _Following:
    """The file a reader follows: the one the download writes, opened on the first read; at
    the end of a file the download has left (it started again in a new one), the new one.
    Both hold the same bytes at every offset (the digest pins them, or the download fails),
    so the reader goes on from where it is, however far behind."""

    def __init__(self, download: Download) -> None:
        self.download = download
        # read with the opening, no await between: the file is that generation's
        self.generation = download.generation
        self.handle = _open(download)

    def moved_on(self) -> bool:
        """Whether the download writes another file now; if so, follow that one instead."""
        if self.generation == self.download.generation:
            return False
        self.generation = self.download.generation
        handle = _open(self.download)
        self.handle.close()
        self.handle = handle
        return True

    def __enter__(self) -> _Following:
        return self

    def __exit__(self, *_: object) -> None:
        self.handle.close()


async def _more(download: Download, descriptor: int, at: int) -> None:
    """Wait for more bytes of the download than the file's first ``at`` (or a look at the
    file, at least every _POLL s); the download's failure, or a file that ended early, as an
    UpstreamError."""
    finished = download.task is not None and download.task.done()
    if finished:
        if download.error is not None:
            raise UpstreamError(f"blob {download.digest}: {download.error}")
        # done and still nothing past ``at``: the file is not what we follow (a positioned
        # read: the reads of the file move no file position)
        if not os.pread(descriptor, 1, at):
            raise UpstreamError(f"blob {download.digest}: stored file ended early")
        return
    moved = download.moved
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(moved.wait(), _POLL)


def _read_at(handle: io.FileIO, at: int, block: bytearray, most: int) -> memoryview:
    """What the file holds from ``at`` on (``most`` bytes at most), read into ``block``: one
    read, no new buffer."""
    handle.seek(at)
    view = memoryview(block)[: min(len(block), most)]
    got = handle.readinto(view)
    return view[: got or 0]


# -- the digest, computed beside the download -----------------------------------------------
_HASH_READ = 1 << 18  # what the digesting thread hashes at a time: how stale its state can be
_HASH_POLL = 0.05  # seconds it waits for more of the file when not told
_BESIDE = 1 << 22  # the smallest blob hashed beside its download (one block of the transport)
DIGEST_THREAD = "ocireg-sync-digest"


class _Digesting:
    """The SHA-256 of a download's file, computed by a thread of its own that follows the
    file as it is written (reads of what the file holds: its size counts completed writes).

    Why not hash the pieces as they are written, as an upload does: on a busy host the hash
    is the largest share of the mirror's CPU (a third), and the pull that follows the download
    waits for every piece the writer hashes first. Here the thread runs at the lowest
    priority (nice 19, this thread alone), so the pieces reach the file, and the pull, first,
    and the hash uses what CPU is left; on an idle core it keeps pace with the download.

    Once the download has every byte, nothing waits for that thread, which a busy host may
    starve for seconds: ``finish`` tells it to stop and hashes the rest at normal priority from
    the last state it published (a copy after each ``_HASH_READ`` bytes, so its hasher is never
    shared while it runs). The digest is still checked on every byte of the file before
    anything is stored (bench/ANALYSIS.md, issue 15)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # what the thread has hashed and a copy of the state there: one tuple, one store
        self.published: tuple[int, Hasher] = (0, new_hasher(CANONICAL))
        self.more = threading.Event()  # the file grew, or the thread is to stop
        self.stopped = False
        self.abandoned = False  # the download ended without the hash: ``finish`` stops too
        self._loop = asyncio.get_running_loop()  # once it is closed, nobody wants the hash
        self.thread = threading.Thread(target=self._run, name=DIGEST_THREAD, daemon=True)

    def start(self) -> bool:
        """Start the thread; False when none can be started (the upload path hashes then)."""
        try:
            self.thread.start()
        except RuntimeError as error:  # "can't start new thread": out of threads or memory
            event(log, logging.WARNING, "sync digest thread not started", error=str(error))
            return False
        return True

    async def finish(self, size: int) -> Hasher | None:
        """The hash of the file's ``size`` bytes: the thread is stopped, not waited for, and
        what it had not hashed yet is hashed in a worker thread at normal priority. None if
        the file ended short of them (or could not be read: the upload path then hashes the
        file itself)."""
        self.stop()
        hashed, hasher = self.published
        rest = partial(_hash_rest, self.path, hasher, hashed, size, lambda: self.abandoned)
        return await anyio.to_thread.run_sync(rest)

    def stop(self) -> None:
        self.stopped = True
        self.more.set()

    def abandon(self) -> None:
        """Nobody will use the hash (the download ended, or was cancelled while ``finish``
        hashed the rest: a worker thread is not cancelled with its task): stop everything."""
        self.abandoned = True
        self.stop()

    def _run(self) -> None:
        with contextlib.suppress(OSError):  # lowering one's own priority is always allowed
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        with contextlib.suppress(OSError):  # the file is gone: ``finish`` finds out
            self._follow()

    def _follow(self) -> None:
        hashed, hasher = self.published
        hasher = hasher.copy()
        block = bytearray(_HASH_READ)
        with open(self.path, "rb", buffering=0) as handle:
            while not self.stopped and not self._loop.is_closed():
                if os.fstat(handle.fileno()).st_size <= hashed:
                    self.more.wait(_HASH_POLL)
                    self.more.clear()
                    continue
                got = os.preadv(handle.fileno(), [block], hashed)
                if got <= 0:
                    return
                hasher.update(cast(bytes, memoryview(block)[:got]))  # hashlib takes any buffer
                hashed += got
                self.published = (hashed, hasher.copy())


def _hash_rest(
    path: Path, hasher: Hasher, hashed: int, size: int, abandoned: Callable[[], bool]
) -> Hasher | None:
    """``hasher``, holding the state after the file's first ``hashed`` bytes, fed the rest up
    to ``size``; None if the file ends short of it, cannot be read, or the hash is
    ``abandoned`` meanwhile (looked at before each block). Blocking."""
    if hashed > size:  # the file grew past the blob: not its hash
        return None
    block = bytearray(_HASH_READ * 4)
    try:
        with open(path, "rb", buffering=0) as handle:
            while hashed < size:
                if abandoned():
                    return None
                view = memoryview(block)[: min(len(block), size - hashed)]
                got = os.preadv(handle.fileno(), [view], hashed)
                if got <= 0:
                    return None
                hasher.update(cast(bytes, view[:got]))
                hashed += got
    except OSError:
        return None
    return hasher


def _start_digesting(download: Download) -> None:
    """Hash the download's file beside it (from its first byte, whatever earlier attempts
    wrote), once its size is known: when it is a large blob in a local file, the digest
    SHA-256, and the hash will be used (a staged file is copied into storage on another
    filesystem, or any storage but the filesystem, and hashed on the way: a thread would hash
    it twice). A small blob (a thread costs more than its hash), and any other, is hashed by
    the upload path: as it is written, or, staged, at the commit."""
    if download.digesting is not None or (download.size or 0) < _BESIDE:
        return
    path = _growing_file(download)
    if path is None or download.digest.algorithm != CANONICAL:
        return
    if download.staged is not None and not _linkable(download.registry, download.staged):
        return
    digesting = _Digesting(path)
    if not digesting.start():
        return
    if download.session is not None:  # the thread runs: the upload path leaves the hash to it
        download.registry.uploads.hash_elsewhere(download.repo, download.session)
    download.digesting = digesting


def _linkable(registry: Registry, staged: Path) -> bool:
    """Whether the staged file can be linked into the storage (_link): a local root on its
    filesystem."""
    root = registry.driver.local_path("")
    try:
        return root is not None and root.stat().st_dev == staged.stat().st_dev
    except OSError:
        return False


def _stop_digesting(download: Download) -> None:
    if download.digesting is not None:
        download.digesting.abandon()
        download.digesting = None


async def _digested(download: Download) -> tuple[int, Hasher] | None:
    """The finished hash of the download's file and its size (None: none was computed)."""
    digesting = download.digesting
    if digesting is None or download.size is None:
        return None
    hasher = await digesting.finish(download.size)
    return None if hasher is None else (download.size, hasher)
