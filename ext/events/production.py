"""Turning registry changes into events and writing them to the outbox.

A repository creation, push or manifest DELETE reaches the producer as a journal (see
:mod:`ocireg.registry.journal`): its events are written with an intent before the change is
committed, and confirmed once it is (in a thread, many at once), or dropped when it did not
happen. A crash in between leaves the intent, which start-up settles against storage (see
:mod:`.reconcile`): the event goes exactly when the change happened. Lint refusals and scans
change nothing in storage; their events are written when they happen. Each event gets its id
(a UUID) here, once: a retry sends the same id, so a receiver drops duplicates by it.

GC and retention make no events, as in zot (whose collector tells its meta DB and audit log,
not its event recorder): a receiver that mirrors the registry from ``image.deleted`` learns of
them from the catalog, and the audit log records them.

The data is zot's (``name``, ``reference``, ``digest``, ``mediaType``, ``manifest``), with
two objects zot's clients may read and others ignore: ``actor`` (``name``: the user, empty
when anonymous) and ``request`` (``addr``, ``method``, ``useragent``), taken from the request
that made the change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from ocireg.auth.identity import identity_of
from ocireg.errors import RegistryError
from ocireg.registry.journal import Change, Settle
from ocireg.registry.manifests import Manifest
from ocireg.registry.routes import Registries

from .grouping import GroupWriter
from .reconcile import Reconciler, check, is_alive, process_identity
from .sinkset import Target, wanting
from .store import Outbox, Stored

log = logging.getLogger("ocireg.events")

# each event of a change with the sinks that want it and what storage shows once it happened
Written = list[tuple[Stored, list[str], str]]
# what a change's events take from the request that made it, read on the event loop: the
# actor, the request's facts and when (``time.time()``); the events are made from them later
Facts = tuple[dict[str, str], dict[str, str], float]

CONFIRM_DELAY = 0.05  # seconds a confirmation waits to go with the next push's intent


def _request_facts() -> Facts:
    """(actor, request, now) of the request being handled; empty facts outside one."""
    from ocireg.operations import current_request  # late: the server stack

    now = time.time()
    try:
        request = current_request()
    except LookupError:
        return {"name": ""}, {}, now
    user = identity_of(request.scope).user or ""
    client = request.client
    request_facts = {
        "addr": f"{client.host}:{client.port}" if client else "",
        "method": request.method,
        "useragent": request.headers.get("user-agent", ""),
    }
    return {"name": user}, request_facts, now


def _event_id() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` makes it, at a fifth of
    its CPU (one per event, in the group writer's thread)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _event_time(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")


class Producer:
    """Writes one event per change to the outbox, for the sinks whose filters want it."""

    def __init__(
        self, outbox: Outbox, targets: list[Target], prefix: str, registries: Registries
    ) -> None:
        self.outbox = outbox
        self.targets = targets
        self.prefix = prefix
        self.reconciler = Reconciler(outbox, registries)
        self._owner = (-1, "")  # (pid, identity): computed again in a forked worker
        # Guards the intents this process knows the state of: written and not yet settled by
        # their commit (in flight), or committed and waiting for their confirmation.
        self._guard = threading.Lock()
        self._in_flight: set[int] = set()
        self._unconfirmed: list[int] = []
        self._being_confirmed: set[int] = set()  # taken by the confirmer, not yet written
        self._confirming = False  # a confirmer is running or queued
        self._stopped = False  # shut down: no writer thread is started again (see shutdown)
        # Held by the group writer while it writes intents, and by settle_stale while it
        # looks (not by the loop's settling, which ``_guard`` alone keeps short).
        self._writing = threading.Lock()
        self._writer: GroupWriter[tuple[Change, Facts], Settle | None] = GroupWriter(
            self._write_group,
            "events-intents",
            abandon=_not_committed,
            size=_size,
            try_write=self._try_write_group if outbox.can_try else None,
        )

    def emit(self, kind: str, repo: str, data: dict[str, Any]) -> None:
        """Queue an event of something that changed nothing in storage (lint, scans)."""
        type = f"{self.prefix}.{kind}"
        sinks = wanting(self.targets, type, repo)
        if not sinks:
            return
        event = _stored(type, repo, data, _request_facts())
        try:  # from the event loop (a lint refusal), written in a thread: not awaited, since
            # nothing waits for it, and the outbox's lock may be held by a group of intents
            asyncio.get_running_loop().run_in_executor(None, self._record, event, sinks)
        except RuntimeError:  # outside the loop (a scan's thread), or its executor is shut
            self._record(event, sinks)

    def _record(self, event: Stored, sinks: list[str]) -> None:
        try:
            self.outbox.record(event, sinks)
        except Exception:  # the refusal or scan stands; say loudly that its event is lost
            log.exception("events: could not queue %s for %s", event.type, event.repo)

    def owner(self) -> str:
        pid = os.getpid()
        if self._owner[0] != pid:
            self._owner = (pid, process_identity(pid))
        return self._owner[1]

    # -- the journal ----------------------------------------------------------------------
    def __call__(self, change: Change) -> Settle | None:
        return self.journal(change)

    def journal(self, change: Change) -> Settle | None:
        """Write the events of ``change`` with their intents; the function that settles them
        once the commit is over (None when no sink wants them, or they could not be written:
        the change goes on, its events lost, loudly)."""
        events = self._written_or_none(change, _request_facts())
        with self._guard:  # written and known as in flight in one step (see settle_stale)
            # the confirmations waiting go in the same transaction: one write, not two
            confirmed, self._unconfirmed = self._unconfirmed, []
            try:
                seqs = self.outbox.intend(events, self.owner(), confirmed)
            except Exception:
                log.exception("events: could not queue the %s of %s", change.kind, change.repo)
                self._unconfirmed[:0] = confirmed
                return None
            self._in_flight.update(seqs)
        return self._settling(seqs)

    def write_soon(self, change: Change) -> asyncio.Future[Settle | None]:
        """``journal`` for a change committed from the event loop: only the request's facts
        are read here (they are the loop's); the events are made and written by the group
        writer, together with those of the other pushes waiting meanwhile, in one
        transaction."""
        return self._writer.submit((change, _request_facts()))

    def _written(self, change: Change, facts: Facts) -> Written:
        """The events of ``change`` that some sink wants, each with its sinks and what storage
        shows once it happened; its id, time and JSON data are made here."""
        written = []
        for kind, reference, data in _events_of(change):
            type = f"{self.prefix}.{kind}"
            sinks = wanting(self.targets, type, change.repo)
            if sinks:
                event = _stored(type, change.repo, data, facts)
                written.append((event, sinks, check(change.kind, reference, change.digest)))
        return written

    def _settling(self, seqs: list[int]) -> Settle | None:
        if not seqs:
            return None
        return lambda committed: self._settle(seqs, committed)

    def _write_group(self, changes: list[tuple[Change, Facts]]) -> list[Settle | None]:
        """The group writer's work: the events of ``changes`` with their intents, and the
        confirmations waiting, in one transaction; with no change, the confirmations alone.
        The events are made here, not on the event loop (their JSON embeds a manifest of up
        to 4 MiB)."""
        if not changes:
            self._confirm_waiting()
            return []
        group = [(change, self._written_or_none(change, facts)) for change, facts in changes]
        with self._writing:  # written and known as in flight in one step (see settle_stale)
            with self._guard:
                confirmed, self._unconfirmed = self._unconfirmed, []
                self._being_confirmed.update(confirmed)  # not stale while written
            try:
                written = self.outbox.intend_groups(
                    [events for _, events in group], self.owner(), confirmed
                )
                kept: list[int] = []
            except Exception:  # one bad change, or a lock held too long: each on its own
                log.exception("events: could not queue a group of %d change(s)", len(group))
                written = [self._write_alone(change, events) for change, events in group]
                kept = confirmed
            with self._guard:
                self._being_confirmed.difference_update(confirmed)
                self._unconfirmed[:0] = kept
                self._in_flight.update(seq for seqs in written for seq in seqs)
        if kept:  # not left for settle_stale's next round: tried again now, on their own
            self._confirm_waiting()
        return [self._settling(seqs) for seqs in written]

    def _try_write_group(self, changes: list[tuple[Change, Facts]]) -> list[Settle | None] | None:
        """``_write_group`` on the event loop if it needs no wait (see ``GroupWriter``), else
        None with nothing written: the group writer's thread then writes the group. Raises
        when a change's events cannot be made, or the write fails: the thread's way of
        writing meets that again and handles it (change by change, loudly)."""
        if not self._writing.acquire(blocking=False):  # settle_stale looks, or the thread writes
            return None
        try:
            group = [self._written(change, facts) for change, facts in changes]
            with self._guard:
                confirmed, self._unconfirmed = self._unconfirmed, []
                self._being_confirmed.update(confirmed)
            written: list[list[int]] | None = None
            try:
                written = self.outbox.try_intend_groups(group, self.owner(), confirmed)
            finally:
                with self._guard:
                    self._being_confirmed.difference_update(confirmed)
                    if written is None:  # not written: they wait for the next write
                        self._unconfirmed[:0] = confirmed
                    else:
                        self._in_flight.update(seq for seqs in written for seq in seqs)
        finally:
            self._writing.release()
        if written is None:
            return None
        return [self._settling(seqs) for seqs in written]

    def _written_or_none(self, change: Change, facts: Facts) -> Written:
        """``_written`` for one change of a group: a change whose events cannot be made
        loses them, loudly (as in ``journal``), not the group's other changes theirs."""
        try:
            return self._written(change, facts)
        except Exception:
            log.exception("events: could not make the events of %s of %s", change.kind, change.repo)
            return []

    def _write_alone(self, change: Change, events: Written) -> list[int]:
        """The intents of one change of a group that failed; none when this fails too (the
        change goes on, its events lost, loudly)."""
        try:
            return self.outbox.intend(events, self.owner())
        except Exception as exc:
            log.error("events: could not queue the %s of %s: %s", change.kind, change.repo, exc)
            return []

    def close(self) -> None:
        """End the group writer's thread (what is queued is written first)."""
        self._writer.close()

    def shutdown(self) -> None:
        """At the process's end, its requests answered: end the group writer's thread once
        what is queued is written, then write the confirmations still waiting (each waits up
        to ``CONFIRM_DELAY`` for a push to take it along). Left unwritten, the next start-up
        would settle those intents against storage: the same events, later, for a look at
        each change's repository. A confirmation timer still pending then wakes no thread:
        what a request answered after this leaves is settled at the next start-up. Blocking."""
        self._stopped = True
        self.close()
        self._confirm_waiting()

    def _settle(self, seqs: list[int], committed: bool) -> None:
        if committed:
            with self._guard:
                self._in_flight.difference_update(seqs)
                self._unconfirmed.extend(seqs)
            self._confirm_soon()
            return
        try:  # the commit raised: look whether the change is in storage all the same
            mine = [intent for intent in self.outbox.intents() if intent.seq in seqs]
            self.reconciler.settle(mine)
        finally:  # settled, or left to settle_stale
            with self._guard:
                self._in_flight.difference_update(seqs)

    def _confirm_soon(self) -> None:
        """Confirm what is committed: with the next push's intent (``journal``), or, when no
        push comes within ``CONFIRM_DELAY``, in a thread: the push's answer waits for its
        intent, not for its confirmation. One confirmer at a time writes every confirmation
        waiting, in one transaction, so a burst of pushes costs no transaction of its own for
        confirmations. A crash before it leaves intents that the next settling confirms, the
        change being in storage; a confirmation that fails is tried again by
        ``settle_stale``."""
        with self._guard:
            if self._confirming:
                return  # the running or coming confirmer takes it on its turn
            self._confirming = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the event loop: confirm here
            self._confirm_waiting()
            return
        loop.call_later(CONFIRM_DELAY, self._wake_confirmer)

    def _wake_confirmer(self) -> None:
        """Have the group writer confirm what waits; if it cannot (its thread does not
        start), the next ``_confirm_soon`` (a push's settling, ``settle_stale``) tries again."""
        if self._stopped:  # shut down: no thread is started again (see shutdown)
            with self._guard:
                self._confirming = False
            return
        try:
            self._writer.wake()
        except Exception:
            log.exception("events: could not wake the confirmer; settle_stale will confirm")
            with self._guard:
                self._confirming = False

    def _confirm_waiting(self) -> None:
        while True:
            with self._guard:
                seqs, self._unconfirmed = self._unconfirmed, []
                if not seqs:
                    self._confirming = False
                    return
                # known to settle_stale until written: not yet confirmed, never stale
                self._being_confirmed.update(seqs)
            try:
                self.outbox.confirm(seqs)
            except Exception:  # kept, to be tried again by settle_stale
                log.exception("events: could not confirm %d event(s)", len(seqs))
                with self._guard:
                    self._being_confirmed.difference_update(seqs)
                    self._unconfirmed[:0] = seqs
                    self._confirming = False
                return
            with self._guard:
                self._being_confirmed.difference_update(seqs)

    def settle_stale(self) -> int:
        """Settle what no commit will settle: the intents of processes that are gone, and this
        process's own that are neither in flight nor waiting for their confirmation (their
        settling failed); try again the confirmations that failed. How many intents were
        settled. Blocking: the scheduler calls it every ``SETTLE_SECONDS``."""
        self._confirm_soon()
        # no intent is written, nor confirmed, while this looks
        with self._writing, self._guard:
            me = self.owner()
            known = self._in_flight | set(self._unconfirmed) | self._being_confirmed
            stale = [
                intent
                for intent in self.outbox.intents()
                if (intent.owner == me and intent.seq not in known)
                or (intent.owner != me and not is_alive(intent.owner))
            ]
        return self.reconciler.settle_orphans(stale)

    # -- the listeners --------------------------------------------------------------------
    def manifest_refused(
        self,
        repo: str,
        reference: str,
        digest: str,
        manifest: Manifest,
        data: bytes,
        refusal: RegistryError,
    ) -> None:
        from ocireg.ext.lint.check import LintRefusal

        if not isinstance(refusal, LintRefusal):
            return
        self.emit(
            "image.lint_failed",
            repo,
            {
                "name": repo,
                "reference": reference,
                "digest": digest,
                "mediaType": manifest.media_type,
                "manifest": data.decode("utf-8", "replace"),
            },
        )

    def scanned(self, repo: str, digest: str, media_type: str, summary: dict[str, Any]) -> None:
        """A CVE scan of an image finished (in the scanner's thread, outside any request)."""
        self.emit(
            "image.scanned",
            repo,
            {
                "name": repo,
                "reference": digest,
                "digest": digest,
                "mediaType": media_type,
                "vulnerabilities": summary,
            },
        )


def _not_committed(settle: Settle | None) -> None:
    """A push written by the group writer whose request went before its commit."""
    if settle is not None:
        settle(False)


def _size(item: tuple[Change, Facts]) -> int:
    """About the bytes of a change's events (each embeds the manifest)."""
    change = item[0]
    return max(1, len(change.references)) * (len(change.manifest) + 1024)


def _stored(type: str, repo: str, data: dict[str, Any], facts: Facts) -> Stored:
    """An event with its id, as the outbox keeps it: ``data`` with the actor and request."""
    actor, request, stamp = facts
    document = {**data, "actor": actor, "request": request}
    return Stored(_event_id(), repo, type, _event_time(stamp), json.dumps(document))


def _events_of(change: Change) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, reference, data) of each event a change makes, as zot makes them."""
    if change.kind == "created":
        return [("repository.created", "", {"name": change.repo})]
    described = {"digest": change.digest, "mediaType": change.media_type}
    if change.kind == "removed":
        (reference,) = change.references
        data = {"name": change.repo, "reference": reference, **described}
        return [("image.deleted", reference, data)]
    text = change.manifest.decode("utf-8", "replace")
    return [
        (
            "image.updated",
            reference,
            {"name": change.repo, "reference": reference, **described, "manifest": text},
        )
        for reference in change.references or (change.digest,)
    ]
