"""The running extension: when signatures are evaluated, and the ``requireSignature`` gate.

Trust is evaluated, always in a thread and never on a request's path:

* when a signature is pushed (the observer records it; a drain every second judges it);
* when a key or certificate is uploaded or removed (the signatures of that tool it could affect:
  the untrusted ones after an upload, the trusted ones after a removal);
* at start-up, for signatures never judged (pushed while trust was off);
* every two hours, as zot does, every signature; and every minute, the trusted verdicts whose
  certificate has expired since.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from ocireg.errors import ErrorCode, RegistryError
from ocireg.logs import event
from ocireg.meta.db import MetaDB
from ocireg.registry.manifests import Manifest
from ocireg.registry.offloop import run_database_work, run_storage_work
from ocireg.registry.routes import Registries
from ocireg.registry.signatures import cosign_tag_subject, signature_kind
from ocireg.registry.store import QuietObserver
from ocireg.repopattern import matches
from ocireg.scheduler import Priority, Scheduler, Task
from ocireg.state import AppState

from . import TrustSettings
from .evaluate import Evaluator
from .store import LayerVerdict, TrustTables

log = logging.getLogger("ocireg.trust")
DRAIN_INTERVAL = 1.0
SWEEP_INTERVAL = 2 * 3600.0  # zot's SignatureValidationGenerator
LAPSE_INTERVAL = 60.0


@dataclass
class Trust:
    settings: TrustSettings
    evaluator: Evaluator
    scheduler: Scheduler
    _pending: list[tuple[str, str, str | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(
        cls, settings: TrustSettings, registries: Registries, meta: MetaDB, scheduler: Scheduler
    ) -> Trust:
        evaluator = Evaluator(settings, registries, meta, TrustTables(meta))
        return cls(settings, evaluator, scheduler)

    # -- what the observer records ----------------------------------------------------------
    def note_signature(self, repo: str, digest: str, subject: str | None) -> None:
        with self._lock:
            self._pending.append((repo, digest, subject))

    async def drain(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return 0
        return await asyncio.to_thread(self._judge_pending, pending)

    def _judge_pending(self, pending: list[tuple[str, str, str | None]]) -> int:
        got, judge = self.evaluator.material(), self.evaluator.judge
        judged = [(repo, d, judge(repo, d, got, subject)) for repo, d, subject in pending]
        self.evaluator.tables.put_many(judged)
        return sum(v.trusted for _, _, verdicts in judged for v in verdicts)

    # -- rounds -------------------------------------------------------------------------------
    def reevaluate(self, tool: str, *, added: bool) -> None:
        """Judge again the signatures of ``tool`` that its keys or certificates changing could
        affect: a key or certificate ``added`` can only make an untrusted signature trusted, and
        one removed can only take trust away from a trusted one."""
        name = f"trust: {tool} material changed"

        async def run() -> int:
            # (a meta DB query: on PostgreSQL a request over the network, kept off the loop)
            pairs = await asyncio.to_thread(self.evaluator.of_tool, tool, trusted=not added)
            trusted = await asyncio.to_thread(self.evaluator.evaluate_all, pairs)
            event(log, logging.INFO, "trust re-evaluated", tool=tool,
                  material="added" if added else "removed", signatures=len(pairs),
                  trusted_layers=trusted)  # fmt: skip
            return trusted

        self.scheduler.submit(Task(name, run, Priority.MEDIUM))

    async def _per_repository(self, unjudged_only: bool) -> AsyncIterator[Task]:
        # the repositories from the meta DB in a thread: the scheduler takes a round's tasks
        # on the event loop, and on PostgreSQL this is a request over the network
        for repo in await asyncio.to_thread(self.evaluator.meta.repositories):
            yield Task(f"trust: signatures of {repo}", self._repository_round(repo, unjudged_only))

    def _repository_round(self, repo: str, unjudged_only: bool) -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            judge = self.evaluator.unjudged if unjudged_only else self.evaluator.everything
            pairs = await asyncio.to_thread(judge, repo)
            return await asyncio.to_thread(self.evaluator.evaluate_all, pairs)

        return run

    def sweep(self) -> AsyncIterator[Task]:
        return self._per_repository(unjudged_only=False)

    def lapsed(self) -> Iterator[Task]:
        async def run() -> int:
            pairs = await asyncio.to_thread(self.evaluator.lapsed)
            return await asyncio.to_thread(self.evaluator.evaluate_all, pairs)

        yield Task("trust: lapsed verdicts", run)

    def schedule(self) -> None:
        self.scheduler.every("trust-pushed", DRAIN_INTERVAL, self._drain_job, Priority.HIGH,
                             first_delay=DRAIN_INTERVAL, exclusive=False)  # fmt: skip
        self.scheduler.every("trust", SWEEP_INTERVAL, self.sweep, first_delay=SWEEP_INTERVAL)
        self.scheduler.every("trust-lapsed", LAPSE_INTERVAL, self.lapsed)
        self.scheduler.once(Task("trust: signatures not judged yet", self._first))

    def _drain_job(self) -> Iterator[Task]:
        yield Task("trust: pushed signatures", self.drain, Priority.HIGH)

    async def _first(self) -> int:
        total = 0
        for repo in await asyncio.to_thread(self.evaluator.meta.repositories):
            total += await self._repository_round(repo, unjudged_only=True)()
        return total

    # -- the gate -----------------------------------------------------------------------------
    def is_trusted(self, repo: str, digest: str) -> bool:
        """Whether ``repo``'s manifest ``digest`` has a trusted signature (blocking)."""
        return self.evaluator.is_trusted(repo, digest)

    def judge_now(self, repo: str, signatures: list[tuple[str, str | None]]) -> list[LayerVerdict]:
        """Judge these signature manifests of ``repo`` (digest, and the subject a legacy
        ``.sig`` tag names) at once, store their verdicts and return them (blocking). For
        sync's ``onlySigned``, which decides before it stores an image, so it cannot wait for
        the drain or for the meta DB to learn the signatures."""
        got, judge = self.evaluator.material(), self.evaluator.judge
        judged = [(repo, digest, judge(repo, digest, got, legacy)) for digest, legacy in signatures]
        self.evaluator.tables.put_many(judged)
        return [verdict for _, _, verdicts in judged for verdict in verdicts]

    async def _asked(self, call: Callable[..., bool], *args: str) -> bool:
        """A check that reads the meta DB and the repository's storage, from a request, on a
        thread (an unsigned image's check reads every image of its repository): the
        database's when the meta DB is across the network, so a silent PostgreSQL holds up
        the gated pulls and not the work that shares other threads (password checks, events);
        else the storage's."""
        if self.evaluator.meta.shared_by_instances:
            return await run_database_work(True, call, *args)
        return await run_storage_work(True, call, *args)

    def gated(self, repo: str) -> bool:
        return any(matches(pattern, repo) for pattern in self.settings.requireSignature)

    async def check_pull(self, repo: str, digest: str) -> None:
        if not self.gated(repo):
            return
        registry = self.evaluator.registries.of(repo)
        manifest = await registry.off_loop(registry.parsed_manifest, repo, digest)
        if manifest is not None and signature_kind(manifest):
            return  # signatures are fetched to verify images: never gated
        if await self._asked(self.is_trusted, repo, digest):
            return
        raise RegistryError(
            ErrorCode.DENIED,
            {
                "reason": "this repository serves only images with a trusted signature "
                "(extensions.trust.requireSignature), and this one has none",
                "digest": digest,
            },
        )


class SignatureObserver(QuietObserver):
    """Records pushed signatures (and forgets deleted ones) for the drain to judge. An untagged
    legacy signature stops counting by itself: ``is_trusted`` checks the tag."""

    def __init__(self, trust: Trust) -> None:
        self.trust = trust

    def pushed(
        self,
        repo: str,
        digest: str,
        size: int,
        tags: list[str],
        pusher: str = "",
        manifest: Manifest | None = None,
    ) -> None:
        legacy = next((s for s in map(cosign_tag_subject, tags) if s is not None), None)
        if legacy is not None or manifest is None or signature_kind(manifest):
            self.trust.note_signature(repo, digest, legacy)

    def deleted(self, repo: str, digest: str) -> None:
        self.trust.note_signature(repo, digest, None)  # judged again: found gone, forgotten

    def removed(self, repo: str) -> None:
        self.trust.evaluator.tables.forget(repo)


def trust_of(app: AppState) -> Trust | None:
    """The running trust extension of ``app``, if it is enabled (sync's ``onlySigned`` calls
    ``trust_of(app).judge_now(repo, signatures)``)."""
    active = app.extensions.get("trust")
    return active.state if active is not None else None
