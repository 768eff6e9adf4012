"""Journals: told of a change to a repository before it is committed, and of the outcome after,
so that a record of the change (the events outbox, for one) is written in the same step as the
commit: a crash between the two leaves an intent that start-up can settle against storage.

A journal is called with the :class:`Change` under the repository's lock (or, for a push, just
before its commit batch is queued), writes what it needs durably, and returns the function that
the commit calls with its outcome: ``True`` when the change is in storage, ``False`` when the
commit raised, so that the change may or may not be there (the journal looks). Observers, by
contrast, are told only after the change, which a crash can skip.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

log = logging.getLogger("ocireg.registry")

ChangeKind = Literal["created", "pushed", "removed"]


@dataclass(frozen=True)
class Change:
    """A change about to be committed to one repository."""

    kind: ChangeKind
    repo: str
    digest: str = ""  # pushed or removed: the manifest's digest
    media_type: str = ""
    # pushed: the tags it gets (none: an untagged push); removed: the reference DELETE named
    references: tuple[str, ...] = ()
    manifest: bytes = b""  # pushed: the manifest as stored


Settle = Callable[[bool], None]
Journal = Callable[[Change], Settle | None]


def intend(journals: Sequence[Journal], change: Change) -> Settle | None:
    """Tell every journal of ``change``; the one function that settles them all (None when
    no journal cares). A journal that cannot write its record says so in the log and returns
    None: the change goes on (a push does not fail for want of its event)."""
    return _settling_all([journal(change) for journal in journals], change)


def _settling_all(settles: Sequence[Settle | None], change: Change) -> Settle | None:
    wanted = [settle for settle in settles if settle is not None]
    if not wanted:
        return None

    def settle_all(committed: bool) -> None:
        for settle in wanted:
            try:
                settle(committed)
            except Exception:  # the change stands; its intent is settled at the next start
                log.exception("a journal could not settle a %s of %s", change.kind, change.repo)

    return settle_all


class GroupedJournal(Protocol):
    """A journal that also writes off the event loop on its own (``write_soon``), for example
    the records of concurrent changes together in one transaction: called on the loop, it
    returns at once the future of what calling the journal would have returned. When that
    future is cancelled (its push went), the journal settles what it writes as not made."""

    def __call__(self, change: Change) -> Settle | None: ...

    def write_soon(self, change: Change) -> asyncio.Future[Settle | None]: ...


async def intend_off_loop(journals: Sequence[Journal], change: Change) -> Settle | None:
    """``intend`` off the event loop, for a change committed from it: a grouped journal's
    ``write_soon``, any other journal in a thread the caller awaits.

    A journal's write may wait for a lock held elsewhere: the events outbox shares its SQLite
    file with the meta DB's writes and the sender process, and SQLite's busy handler sleeps
    (1, 2, 5, 10... ms) until the lock is free. On the loop that sleep stalls every request
    of the process; here it delays only this change. The request's context (who pushed) goes
    with it. Cancelled while the journals write, the change is not committed: its records are
    settled as such once written."""
    if not journals:
        return None
    if len(journals) == 1 and hasattr(journals[0], "write_soon"):
        return await _grouped_alone(journals[0], change)  # the usual case: the events alone
    writes: list[asyncio.Future[Settle | None]] = []
    try:
        _start_writes(journals, change, writes)
    except BaseException:  # a journal raised: what the others started is settled as not made
        if writes:
            started = asyncio.gather(*writes, return_exceptions=True)
            started.add_done_callback(lambda done: _settle_abandoned(done, change))
        raise
    written = asyncio.gather(*writes, return_exceptions=True)
    try:
        outcomes = await asyncio.shield(written)
    except asyncio.CancelledError:
        written.add_done_callback(lambda done: _settle_abandoned(done, change))
        raise
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failures:  # the change is not made: what the others wrote is settled as such
        _settle_abandoned(written, change)
        raise failures[0]
    return _settling_all(
        [outcome for outcome in outcomes if not isinstance(outcome, BaseException)], change
    )


async def _grouped_alone(journal: Journal, change: Change) -> Settle | None:
    """``intend_off_loop`` for one grouped journal: its future awaited as it is, without the
    gathering and shielding that several journals need (a push's hot path). Cancelled while
    it writes, the future is cancelled with the push, and the journal settles what it then
    writes as not made (see ``GroupedJournal``); cancelled once it is written, the settle
    that came too late is called here."""
    written: asyncio.Future[Settle | None] = journal.write_soon(change)  # type: ignore[attr-defined]
    try:
        return await written
    except asyncio.CancelledError:
        if written.done() and not written.cancelled() and written.exception() is None:
            settle = _settling_all([written.result()], change)
            if settle is not None:
                settle_not_made(settle)
        raise


def settle_not_made(settle: Settle) -> None:
    """Settle a change as not committed: in a thread (settling may read storage), or here
    when the loop's executor is shut (stopping), never raising in place of the caller's
    cancellation (``settle`` logs its own failures, see ``_settling_all``)."""
    try:
        asyncio.get_running_loop().run_in_executor(None, settle, False)
    except RuntimeError:  # the executor is shut
        settle(False)


def _start_writes(
    journals: Sequence[Journal], change: Change, writes: list[asyncio.Future[Settle | None]]
) -> None:
    """Start each journal's write of ``change``, adding its future to ``writes`` as it goes."""
    plain: list[Journal] = []
    for journal in journals:
        write_soon = getattr(journal, "write_soon", None)
        if write_soon is not None:
            writes.append(write_soon(change))
        else:
            plain.append(journal)
    if plain:
        try:
            writes.append(
                asyncio.get_running_loop().run_in_executor(
                    None, contextvars.copy_context().run, intend, plain, change
                )
            )
        except RuntimeError:  # the executor is shut (stopping): write it here
            writes.append(_done(intend(plain, change)))


def _done(settle: Settle | None) -> asyncio.Future[Settle | None]:
    future: asyncio.Future[Settle | None] = asyncio.get_running_loop().create_future()
    future.set_result(settle)
    return future


def _settle_abandoned(
    written: asyncio.Future[list[Settle | BaseException | None]], change: Change
) -> None:
    """The change of ``intend_off_loop`` will not be committed (its caller went, or a journal
    failed): what was written is settled as not committed (in a thread: settling may read
    storage)."""
    if written.cancelled():
        return
    settles = [each for each in written.result() if not isinstance(each, BaseException)]
    settle = _settling_all(settles, change)
    if settle is not None:
        settle_not_made(settle)


@contextmanager
def journaled(journals: Sequence[Journal], change: Change) -> Iterator[None]:
    """Tell the journals of ``change`` before the block that commits it, and its outcome after
    (for a commit made in the block itself; a push's batch settles on its own)."""
    settle = intend(journals, change)
    try:
        yield
    except BaseException:
        if settle is not None:
            settle(False)
        raise
    if settle is not None:
        settle(True)


@asynccontextmanager
async def journaled_off_loop(journals: Sequence[Journal], change: Change) -> AsyncIterator[None]:
    """``journaled`` for a commit made from the event loop: the journals write off the loop
    (``intend_off_loop``: a journal's lock may be held for a while, by a group of pushes'
    records), and a commit that raised is settled in a thread (settling may read storage)."""
    settle = await intend_off_loop(journals, change)
    try:
        yield
    except BaseException:
        if settle is not None:
            settle_not_made(settle)
        raise
    if settle is not None:
        settle(True)
