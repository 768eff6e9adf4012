"""Settling the intents that a process left behind when it died between writing an event and
learning whether its change was committed.

Each intent names its owner (``pid:start time`` of the process that wrote it, so that a reused
pid is not taken for the same process) and what storage shows when the change happened:

- ``created``: the repository exists;
- ``pushed`` to a tag: the tag names the pushed digest; untagged: the digest is in the index;
- ``removed`` by tag: the tag no longer names the digest; by digest: the digest is gone.

An intent whose owner is gone is confirmed when storage shows its change (the event goes) and
dropped when it does not (no event for a change that did not happen). A live owner's intents
are its own to settle: another process leaves them alone, and the owner settles against
storage only those its commits left unsettled (a settling that failed). Each registry process
settles at start-up and then every ``SETTLE_SECONDS``, so that a worker process that dies while
its siblings serve on is settled too, and a failed settling does not hold a repository's events
back until a restart.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

from ocireg.logs import event as log_event
from ocireg.names import is_tag
from ocireg.registry.routes import Registries

from .store import Intent, Outbox

log = logging.getLogger("ocireg.events")

SETTLE_SECONDS = 30.0


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux); None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    # the command name (2nd field) may hold spaces and parentheses: count after the last ')'
    fields = text[text.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def process_identity(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid) or ''}"


def is_alive(owner: str) -> bool:
    pid_text, _, started = owner.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if os.path.isdir("/proc"):
        return started != "" and _start_time(pid) == started
    try:  # no /proc: the pid alone
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check(kind: str, reference: str, digest: str) -> str:
    """What storage shows once the change happened, as an intent keeps it."""
    return json.dumps({"kind": kind, "reference": reference, "digest": digest})


def happened(registries: Registries, repo: str, change: dict[str, Any]) -> bool:
    index = registries.of(repo).index(repo)
    kind, reference, digest = change["kind"], change["reference"], change["digest"]
    if kind == "created":
        return index is not None
    if kind == "pushed":
        if index is None:
            return False
        if is_tag(reference):
            entry = index.tags.get(reference)
            return entry is not None and entry["digest"] == digest
        return digest in index.by_digest
    if kind == "removed":
        if index is None:
            return True
        if is_tag(reference):
            entry = index.tags.get(reference)
            return entry is None or entry["digest"] != digest
        return digest not in index.by_digest
    raise ValueError(f"unknown change kind {kind!r}")


@dataclass
class Reconciler:
    outbox: Outbox
    registries: Registries

    def settle(self, intents: list[Intent]) -> tuple[list[int], list[int]]:
        """Settle ``intents`` against storage: (the seqs confirmed, the seqs dropped)."""
        confirmed, dropped = [], []
        for intent in intents:
            if happened(self.registries, intent.repo, json.loads(intent.change)):
                confirmed.append(intent.seq)
            else:
                dropped.append(intent.seq)
        self.outbox.confirm(confirmed)
        self.outbox.drop(dropped)
        return confirmed, dropped

    def settle_orphans(self, orphans: list[Intent]) -> int:
        """Settle ``orphans``, intents no commit will settle (see ``Producer.settle_stale``);
        how many were settled. Blocking."""
        if not orphans:
            return 0
        confirmed, dropped = self.settle(orphans)
        log_event(
            log,
            logging.WARNING,
            "events left unsettled by a commit settled against storage",
            confirmed=len(confirmed),
            dropped=len(dropped),
        )
        return len(orphans)
