"""Group commit of index changes: concurrent pushes to one repository share one index write.

Every change to a repository's ``index.json`` is a read-modify-write under the repository lock,
and the write costs in proportion to the whole index (copying the lookup maps, writing the file,
and in every other worker process, parsing it again). Pushes to one repository that arrive while
its lock is busy therefore queue here, and whoever takes the lock next applies the whole queue
to one :class:`IndexEdit` and saves once. Each push still gets its own answer: a step that
raises fails only its own push.

A batch runs in a task of its own, not in any request's task, so a client that disconnects
while its push is queued cannot strand the pushes queued behind it. A batch with a heavy step
(a large manifest, whose references take thousands of file checks) runs in a thread, still
under the lock, so the event loop goes on serving meanwhile.

A push may bring a journal's settle function (see :mod:`ocireg.registry.journal`): the batch
calls it with the push's outcome right after the save, whatever became of the request that
queued it, so an intent written before the push was queued is settled in the commit's step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ocireg.registry.index import IndexEdit, IndexStore
from ocireg.registry.journal import Settle, settle_not_made
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.offloop import run_storage_work

# One push's part of a batch. It runs under the repository lock and must raise, if it raises,
# before it changes the edit: the steps after it keep using that edit.
Step = Callable[[IndexEdit], None]


@dataclass
class _Queued:
    step: Step
    done: asyncio.Future[None]
    heavy: bool = False
    settle: Settle | None = None


class IndexCommits:
    def __init__(self, locks: KeyedLocks, indexes: IndexStore, remote: bool = False) -> None:
        """``remote``: storage is asked over the network (s3), so every batch runs in a
        thread (see :mod:`.offloop`)."""
        self._locks = locks
        self._indexes = indexes
        self._remote = remote
        self._queues: dict[str, list[_Queued]] = {}
        self._batches: set[asyncio.Task[Any]] = set()  # held so they are not collected

    async def apply(
        self, repo: str, step: Step, heavy: bool = False, settle: Settle | None = None
    ) -> None:
        """Run ``step`` on the repository's index under its lock, and save the result;
        ``heavy`` runs its batch in a thread; ``settle`` is told whether the step and save
        succeeded, by the batch."""
        queued = _Queued(step, asyncio.get_running_loop().create_future(), heavy, settle)
        queue = self._queues.get(repo)
        if queue is not None:
            queue.append(queued)
        else:
            self._queues[repo] = [queued]
            batch = asyncio.create_task(self._run(repo))
            self._batches.add(batch)
            batch.add_done_callback(self._batches.discard)
        await queued.done

    async def _run(self, repo: str) -> None:
        queue: list[_Queued] = []
        try:
            async with self._locks.hold(repo):
                # Everything queued until now joins this batch; later pushes start the next.
                queue = self._queues.pop(repo)
                if self._remote or any(queued.heavy for queued in queue):
                    outcomes = await run_storage_work(True, self._commit, repo, queue)
                else:
                    outcomes = self._commit(repo, queue)
                for queued, error in outcomes:  # futures are settled on the loop only
                    if queued.settle is not None and error is None:
                        queued.settle(True)
                    elif queued.settle is not None:  # (may read storage: in a thread)
                        settle_not_made(queued.settle)
                    _settle(queued.done, error)
        except BaseException as exc:  # the lock or the index read failed, or shutdown
            if not queue:  # failed before taking the queue, which is still this batch's
                queue = self._queues.pop(repo, [])
            for queued in queue:
                if queued.settle is not None:
                    settle_not_made(queued.settle)
                _settle(queued.done, exc)
            if not isinstance(exc, Exception):
                raise

    def _commit(self, repo: str, queue: list[_Queued]) -> list[tuple[_Queued, Exception | None]]:
        """Apply the queue's steps to one edit and save it; each step's outcome."""
        edit = self._indexes.edit(repo)
        outcomes: list[tuple[_Queued, Exception | None]] = []
        applied: list[_Queued] = []
        for queued in queue:
            try:
                queued.step(edit)
            except Exception as exc:
                outcomes.append((queued, exc))
            else:
                applied.append(queued)
        failure: Exception | None = None
        if applied:
            try:
                self._indexes.save(repo, edit)
            except Exception as exc:
                failure = exc
        return outcomes + [(queued, failure) for queued in applied]


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
