"""Blob upload sessions: streamed, chunked and monolithic, committed atomically by digest.

An upload is a file under ``<repo>/.uploads/<id>``; its size is the upload offset. The digest is
computed while bytes arrive and the running hash is kept in this process, keyed by session and
offset. When the next chunk lands in another worker process (or after a restart) the hash state
is missing and the file is hashed again at commit, so correctness never depends on stickiness.
One exception: a caller may hash a session's file itself (``hash_elsewhere``: sync's large
downloads, beside them in a thread of their own) and hand the state back (``adopt_hash``)
before ``complete``; the digest is checked with it, or with a hash of the file if none came.
Running hashes are kept for at most ``_HASH_STATES`` sessions (the least recently used go
first), so abandoned sessions cost no memory for long.

Open sessions are capped (``SessionCaps``; 429 ``TOOMANYREQUESTS`` past a cap):

- per repository, by counting its session files under a lock of its own, so the cap holds
  across every worker process sharing the root, with nothing to keep in step: a session that
  ends, in any process, or that GC collects, is simply no longer counted;
- per client (address, with the user name when logged in), in each process for the sessions it
  started, the cap shared out among worker processes as ``http.ratelimit`` is. A process does
  not learn of a session that another one completed, so when a client reaches the cap its
  sessions are checked against storage (at most once a second) and those gone are forgotten.
  When instances share storage and a PostgreSQL meta DB, whose each session is lives there
  instead (``SessionCaps.shared``, :mod:`.sharedsessions`), and the cap holds across them all.

A session's lock file is removed when each operation on it ends (see ``locks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ocireg.digests import CANONICAL, Digest, Hasher, new_hasher, require_supported
from ocireg.errors import ErrorCode, RegistryError
from ocireg.registry import layout
from ocireg.registry.dedupe import Dedupe
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.offloop import (
    database_work_soon,
    finish,
    run_database_work,
    run_storage_work,
)
from ocireg.registry.refdedupe import ReferenceDedupe
from ocireg.registry.sharedsessions import SharedUploadSessions
from ocireg.storage.driver import FileWriter, PathNotFoundError, StorageDriver

SESSION_RE = re.compile(r"[0-9a-f]{32}")
CONTENT_RANGE_RE = re.compile(r"(?:bytes[= ])?(\d+)-(\d+)(?:/(?:\d+|\*))?")
_READ_CHUNK = 1 << 20
T = TypeVar("T")
_HASH_STATES = 10_000  # running hashes kept (LRU); others are computed again at commit
_PRUNE_EVERY = 1024  # session starts between checks of which tracked sessions still exist
_RECHECK = 1.0  # seconds between storage checks of one client's sessions at its cap
_SETTLING = 10.0  # seconds a session recorded as someone's may still be without its file


@dataclass(frozen=True)
class SessionCaps:
    """Most upload sessions open at once; None: no cap."""

    per_repository: int | None = None
    per_client: int | None = None  # over all worker processes
    workers: int = 1  # processes sharing the root, which share the per-client cap
    # who opened which session, kept where every instance counts it (PostgreSQL)
    shared: SharedUploadSessions | None = None

    @property
    def per_client_here(self) -> int | None:
        if self.per_client is None:
            return None
        if self.shared is not None:  # counted across every process of every instance
            return self.per_client
        return max(1, math.ceil(self.per_client / self.workers))


@dataclass(frozen=True)
class ChunkInfo:
    """What the client said about the bytes it is sending."""

    content_range: str | None = None
    content_length: int | None = None


async def _in_database(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, a query of the shared sessions' table: a request over the network to
    PostgreSQL, made on a database thread (a slow or silent server then holds up the uploads
    that wait for it, not the event loop) and awaited to its end (see :mod:`.offloop`)."""
    return await run_database_work(True, call, *args)


def _too_many(cap: str, limit: int | None, **whose: str) -> RegistryError:
    detail = {"reason": f"too many open upload sessions: {cap} is {limit}", "cap": cap, **whose}
    return RegistryError(ErrorCode.TOOMANYREQUESTS, detail, message="too many upload sessions")


def range_header(size: int) -> str:
    return f"0-{max(size - 1, 0)}"


def _range_error(size: int, reason: str) -> RegistryError:
    return RegistryError(
        ErrorCode.BLOB_UPLOAD_INVALID,
        {"reason": reason, "offset": size},
        status=416,
        headers={"Range": range_header(size)},
    )


class UploadStore:
    def __init__(
        self,
        driver: StorageDriver,
        locks: KeyedLocks,
        fsync: bool,
        dedupe: Dedupe | ReferenceDedupe,
        caps: SessionCaps | None = None,
    ) -> None:
        self._driver = driver
        self._remote = driver.blob_check_is_request  # see _io
        self._locks = locks
        self._fsync = fsync
        self._dedupe = dedupe
        self.caps = caps or SessionCaps()
        self._hashes: OrderedDict[str, tuple[int, Hasher]] = OrderedDict()
        self._by_client: dict[str, set[tuple[str, str]]] = {}  # sessions started here
        self._owners: dict[tuple[str, str], str] = {}  # and whose they are
        self._checked: dict[str, float] = {}  # when a client's sessions were last checked
        self._starting: set[tuple[str, str]] = set()  # admitted, their files not written yet
        self._starts = 0

    async def _io(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)``, a storage request: on a storage worker thread on S3, here on a
        local disk; run to its end even when the request is cancelled meanwhile, as a call
        made here would be (see :mod:`.offloop`): what follows knows its outcome (a write
        committed or not, a session's file there or not)."""
        return await run_storage_work(self._remote, call, *args)

    async def start(self, repo: str, client: str = "") -> str:
        """A new, empty session; 429 when ``repo`` or ``client`` has too many open."""
        if self.caps.per_repository is None:
            return await self._start(repo, client)
        async with self._locks.hold(f"upload-sessions:{repo}", ephemeral=True):
            return await self._start(repo, client)

    async def _start(self, repo: str, client: str) -> str:
        session = uuid.uuid4().hex
        self._starting.add((repo, session))
        try:
            await self._admit(repo, client, session)
            try:
                await self._io(self._driver.put_content, layout.upload_file(repo, session), b"")
            except BaseException:
                await self._forget_owner(repo, session)
                raise
        finally:
            self._starting.discard((repo, session))
        self._keep_hash(self._key(repo, session), 0, new_hasher())
        return session

    async def _admit(self, repo: str, client: str, session: str) -> None:
        self._starts += 1
        if self._starts % _PRUNE_EVERY == 0:
            await self._prune_clients()
        cap = self.caps.per_client_here
        if cap is not None and not await self._admit_client(repo, client, session, cap):
            raise _too_many("http.maxUploadSessionsPerClient", self.caps.per_client, client=client)
        if self.caps.per_client is not None and self.caps.shared is None:
            # recorded as the client's at once, before any wait for storage: a start made
            # meanwhile counts it (a failure below forgets it)
            self._by_client.setdefault(client, set()).add((repo, session))
            self._owners[(repo, session)] = client
        cap = self.caps.per_repository
        if cap is not None and await self._io(self._open_in, repo) >= cap:
            await self._forget_owner(repo, session)
            raise _too_many("http.maxUploadSessionsPerRepository", cap, repository=repo)

    async def _admit_client(self, repo: str, client: str, session: str, cap: int) -> bool:
        """Whether the client may open one more session (recorded as its, when shared)."""
        shared = self.caps.shared
        if shared is None:
            return len(await self._prune_client(client, cap)) < cap
        if await _in_database(shared.admit, repo, session, client, cap):
            return True
        now = time.monotonic()  # at the cap: forget sessions that ended unrecorded, and retry
        if now - self._checked.get(client, -_RECHECK) < _RECHECK:
            return False
        self._checked[client] = now
        # a session recorded a moment ago (on any instance) may not have its file yet
        mine = await _in_database(shared.of_client, client, time.time() - _SETTLING)
        await _in_database(shared.forget, await self._io(self._missing, list(mine)))
        return await _in_database(shared.admit, repo, session, client, cap)

    def _missing(self, sessions: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (repository, session) pairs whose files are not in storage."""
        return {key for key in sessions if not self._driver.exists(layout.upload_file(*key))}

    def _open_in(self, repo: str) -> int:
        paths = self._driver.children(layout.uploads_dir(repo))
        return sum(1 for path in paths if SESSION_RE.fullmatch(path.rsplit("/", 1)[-1]))

    async def _prune_client(self, client: str, cap: int) -> set[tuple[str, str]]:
        """The client's sessions started here, without those that ended. Those that end in
        this process leave at once; those that ended elsewhere are looked for in storage only
        at the cap (below it, an over-count costs nothing) and at most every ``_RECHECK``
        seconds, so a client that keeps asking past its cap costs no file checks."""
        mine = self._by_client.get(client, set())
        now = time.monotonic()
        if len(mine) >= cap and now - self._checked.get(client, -_RECHECK) >= _RECHECK:
            self._checked[client] = now
            # (a session still starting has no file yet)
            looked = [key for key in mine if key not in self._starting]
            gone = await self._io(self._missing, looked)
            for key in gone:
                self._owners.pop(key, None)
            mine -= gone
        return mine

    async def _prune_clients(self) -> None:
        if self.caps.shared is not None:  # nothing kept here but when each was checked
            self._checked.clear()
            return
        for client in list(self._by_client):
            self._checked.pop(client, None)
            if not await self._prune_client(client, 0):
                del self._by_client[client]
                self._checked.pop(client, None)

    async def _forget_owner(self, repo: str, session: str) -> None:
        if self.caps.shared is not None:
            await _in_database(self.caps.shared.forget, [(repo, session)])
            return
        self._forget_owner_here(repo, session)

    def _forget_owner_here(self, repo: str, session: str) -> None:
        client = self._owners.pop((repo, session), None)
        if client is not None:
            self._by_client.get(client, set()).discard((repo, session))

    def _keep_hash(self, key: str, size: int, hasher: Hasher) -> None:
        self._hashes[key] = (size, hasher)
        self._hashes.move_to_end(key)
        while len(self._hashes) > _HASH_STATES:
            self._hashes.popitem(last=False)

    def hash_elsewhere(self, repo: str, session: str) -> None:
        """The caller hashes the session's file itself (sync's downloads, in a thread of low
        priority that follows the file): appends only write, and the state comes back with
        ``adopt_hash`` before ``complete``, which otherwise hashes the file."""
        self._hashes.pop(self._key(repo, session), None)

    def adopt_hash(self, repo: str, session: str, size: int, hasher: Hasher) -> None:
        """The running hash of the session's first ``size`` bytes, computed by the caller;
        ``complete`` checks the digest with it when the file is still that size."""
        self._keep_hash(self._key(repo, session), size, hasher)

    def forget(self, repo: str, session: str) -> None:
        """Drop what this process keeps about a session that is gone (GC collected it); its
        row in PostgreSQL goes in a thread, not awaited (``forget`` never fails, and a row
        left behind only counts until the client's next check at its cap)."""
        self._hashes.pop(self._key(repo, session), None)
        if self.caps.shared is not None:
            database_work_soon(self.caps.shared.forget, [(repo, session)])
            return
        self._forget_owner_here(repo, session)

    async def size(self, repo: str, session: str) -> int:
        """The session's size so far; BLOB_UPLOAD_UNKNOWN for a session that is not there."""
        return await self._io(self.size_here, repo, session)

    def size_here(self, repo: str, session: str) -> int:
        """``size``, blocking (for a caller off the event loop)."""
        if not SESSION_RE.fullmatch(session):
            raise self._unknown(session)
        try:
            return self._driver.stat(layout.upload_file(repo, session)).size
        except PathNotFoundError:
            raise self._unknown(session) from None

    async def append(
        self,
        repo: str,
        session: str,
        chunks: AsyncIterator[bytes],
        info: ChunkInfo,
        keep_partial: bool = False,
    ) -> int:
        """Append ``chunks``; the session's new size. A failure cuts the file back to where
        this append began, unless ``keep_partial``: then what was written stays (with its hash
        state, when every byte written was hashed) and the error is raised still. Sync's
        downloads keep it, so a reader may send the file's bytes while more arrive."""
        async with self._locks.hold(self._key(repo, session), ephemeral=True):
            return await self._append_locked(repo, session, chunks, info, keep_partial)

    async def complete(
        self,
        repo: str,
        session: str,
        digest: Digest,
        chunks: AsyncIterator[bytes],
        info: ChunkInfo,
    ) -> None:
        require_supported(digest)
        key = self._key(repo, session)
        async with self._locks.hold(key, ephemeral=True):
            size = await self._append_locked(repo, session, chunks, info)
            try:
                actual = await self._digest_of(repo, session, size, digest.algorithm)
                if actual != digest.encoded:
                    raise RegistryError(
                        ErrorCode.DIGEST_INVALID,
                        {"expected": str(digest), "actual": f"{digest.algorithm}:{actual}"},
                    )
                await self._commit(repo, session, digest)
            finally:
                await self._discard(repo, session)

    async def cancel(self, repo: str, session: str) -> None:
        await self.size(repo, session)
        async with self._locks.hold(self._key(repo, session), ephemeral=True):
            await self._discard(repo, session)

    async def discard(self, repo: str, session: str) -> None:
        """Drop a session whether or not it is still there (a failed monolithic push)."""
        async with self._locks.hold(self._key(repo, session), ephemeral=True):
            await self._discard(repo, session)

    async def _discard(self, repo: str, session: str) -> None:
        self._hashes.pop(self._key(repo, session), None)
        try:
            await self._forget_owner(repo, session)
        finally:  # (cancelled while the database answered: the file still goes)
            with contextlib.suppress(PathNotFoundError):
                await self._io(self._driver.delete, layout.upload_file(repo, session))

    async def _append_locked(
        self,
        repo: str,
        session: str,
        chunks: AsyncIterator[bytes],
        info: ChunkInfo,
        keep_partial: bool = False,
    ) -> int:
        size = await self.size(repo, session)
        expected = self._expected_length(size, info)
        key = self._key(repo, session)
        state = self._hashes.pop(key, None)
        hasher = state[1] if state is not None and state[0] == size else None
        writer = await self._io(self._appending, repo, session)
        progress = _Progress(size)
        try:
            written = await _drain(chunks, writer, hasher, expected, progress, self._remote)
            if expected is not None and written != expected:
                raise RegistryError(
                    ErrorCode.SIZE_INVALID, {"expected": expected, "received": written}
                )
        except BaseException:
            if not keep_partial:
                await self._io(writer.cancel)
                raise
            await self._io(writer.commit)
            # a write that failed part-way left bytes its hash never saw: no state then
            if hasher is not None and progress.hashed == writer.size:
                self._keep_hash(key, progress.hashed, hasher)
            raise
        await self._io(writer.commit)
        if hasher is not None:
            self._keep_hash(key, size + written, hasher)
        return size + written

    def _appending(self, repo: str, session: str) -> FileWriter:
        return self._driver.writer(layout.upload_file(repo, session), append=True)

    @staticmethod
    def _expected_length(size: int, info: ChunkInfo) -> int | None:
        expected = info.content_length
        if info.content_range is None:
            return expected
        match = CONTENT_RANGE_RE.fullmatch(info.content_range.strip())
        if match is None:
            raise _range_error(size, f"malformed Content-Range {info.content_range!r}")
        start, end = int(match[1]), int(match[2])
        if start != size or end < start:
            raise _range_error(size, f"chunk {start}-{end} does not continue at offset {size}")
        length = end - start + 1
        if expected is not None and expected != length:
            raise RegistryError(
                ErrorCode.SIZE_INVALID,
                {"reason": "Content-Length does not match Content-Range", "range": length},
            )
        return length

    async def _digest_of(self, repo: str, session: str, size: int, algorithm: str) -> str:
        state = self._hashes.get(self._key(repo, session))
        if algorithm == CANONICAL and state is not None and state[0] == size:
            return state[1].hexdigest()
        return await run_storage_work(True, self._hash_file, repo, session, algorithm)

    def _hash_file(self, repo: str, session: str, algorithm: str) -> str:
        hasher = new_hasher(algorithm)
        with self._driver.reader(layout.upload_file(repo, session)) as handle:
            while chunk := handle.read(_READ_CHUNK):
                hasher.update(chunk)
        return hasher.hexdigest()

    async def _commit(self, repo: str, session: str, digest: Digest) -> None:
        source, target = layout.upload_file(repo, session), layout.blob_file(repo, digest)
        dedupe = self._dedupe
        if isinstance(dedupe, ReferenceDedupe) and dedupe.enabled:
            # On s3: the upload becomes the stored content unless that is there already
            # (then _discard drops it), and the repository gets a reference and a placeholder;
            # under the repository lock that GC holds, so what we reference stays.
            async with self._locks.hold(repo):
                taken = await run_storage_work(True, dedupe.take, repo, digest, source, True)
            if not taken:  # the upload's file went meanwhile and no copy is stored: no 201
                raise self._unknown(session)
            return
        if await self._io(self._held, target, digest):
            # The content is there already, in this repository or in the dedupe store; the
            # upload is dropped by _discard. Under the repository lock that GC holds, so what
            # we keep is not collected meanwhile, and touched, so it looks new to GC.
            async with self._locks.hold(repo):
                if await self._io(self._kept, target, digest):
                    return
        # (a move that fsyncs waits for the disk: in a thread then too)
        await run_storage_work(self._remote or self._fsync, self._store, source, target, digest)

    def _held(self, target: str, digest: Digest) -> bool:
        return self._driver.exists(target) or self._dedupe.has(digest)

    def _kept(self, target: str, digest: Digest) -> bool:
        """Whether the blob is there, or adopted from the dedupe store: then touched."""
        if self._driver.exists(target) or self._dedupe.adopt(target, digest):
            self._driver.touch(target)
            return True
        return False

    def _store(self, source: str, target: str, digest: Digest) -> None:
        self._driver.move(source, target)
        if not self._driver.move_renews_mtime:
            self._driver.touch(target)  # a move keeps the upload's age, which may be old
        self._dedupe.record(target, digest)

    @staticmethod
    def _key(repo: str, session: str) -> str:
        return f"upload:{repo}:{session}"

    @staticmethod
    def _unknown(session: str) -> RegistryError:
        return RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, {"session": session})


_BATCH = 1 << 20
_WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ocireg-upload")
# S3's writes (a part sent whenever one is full) get threads of their own: a silent S3 holds
# them, not the writes of uploads to a local disk
_REMOTE_WRITERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ocireg-upload-s3")


@dataclass
class _Progress:
    """How far an append got: the file's size up to the last byte both written and hashed."""

    hashed: int


def _write_and_hash(
    writer: FileWriter, hasher: Hasher | None, data: bytes, progress: _Progress
) -> None:
    writer.write(data)
    if hasher is not None:
        hasher.update(data)
    progress.hashed += len(data)


async def _drain(
    chunks: AsyncIterator[bytes],
    writer: FileWriter,
    hasher: Hasher | None,
    expected: int | None,
    progress: _Progress,
    remote: bool = False,
) -> int:
    """Write and hash the body; returns the bytes received (stops just past ``expected``).

    Pieces are gathered into 1 MiB batches that a worker thread writes and hashes (both release
    the GIL) while the event loop receives the next batch, so a large push uses a second core.
    A piece of 1 MiB or more with nothing gathered before it goes to the thread as it is (no
    copy: sync's upstream client reads bodies in such blocks). Small bodies never leave the
    event loop, unless ``remote``: a write to S3 may send a part (see :mod:`.offloop`).
    """
    writers = _REMOTE_WRITERS if remote else _WRITERS
    pending: Future[None] | None = None
    batch = bytearray()
    written = 0
    try:
        async for chunk in chunks:
            written += len(chunk)
            if expected is not None and written > expected:
                break
            whole = not batch and len(chunk) >= _BATCH
            if not whole:
                batch += chunk
            if whole or len(batch) >= _BATCH:
                if pending is not None:
                    await asyncio.wrap_future(pending)
                data = chunk if whole else bytes(batch)
                pending = writers.submit(_write_and_hash, writer, hasher, data, progress)
                batch.clear()
        if pending is not None:
            await asyncio.wrap_future(pending)
            pending = None
        if batch and remote:
            pending = writers.submit(_write_and_hash, writer, hasher, bytes(batch), progress)
            await asyncio.wrap_future(pending)
            pending = None
        elif batch:
            _write_and_hash(writer, hasher, bytes(batch), progress)
    finally:
        if pending is not None:
            # A failure or disconnect while a batch is in flight: wait for it (one batch, a few
            # milliseconds on a disk) so the caller's cancel never races a write still landing;
            # on S3 the write may be a part's request: waited for off the loop
            with contextlib.suppress(Exception):
                if remote:
                    await finish(asyncio.wrap_future(pending))
                else:
                    pending.result()
    return written
