"""Setting the events extension up: the outbox, the producer as the registry's journal, the
settling of a dead process's intents, the sender and, when the metrics extension is on, the
per-sink figures."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread

from ocireg.configcheck import ConfigError
from ocireg.extensions.runtime import SetupContext
from ocireg.scheduler import Priority, Task

from .launcher import WATCH_SECONDS, Launcher
from .production import Producer
from .reconcile import SETTLE_SECONDS
from .sender import Sender
from .settings import EventsSettings
from .sinks import tls_context
from .sinkset import Target, targets
from .store import Outbox


@dataclass
class Events:
    outbox: Outbox
    targets: list[Target]
    producer: Producer
    sender: Sender


def _outbox_path(context: SetupContext) -> Path | None:
    return context.app.meta.path


def setup(context: SetupContext) -> Events:
    settings: EventsSettings = context.settings
    path = _outbox_path(context)
    outbox = Outbox(path, durable=_storage_fsyncs(context))
    configured = targets(settings.sinks)
    producer = Producer(outbox, configured, settings.typePrefix, context.registries)
    sender = Sender(outbox, configured, settings.source)
    if configured:
        context.journal(producer)
        context.on_refusal(producer.manifest_refused)
        context.on_scanned(producer.scanned)
        context.scheduler.at_stop(lambda: anyio.to_thread.run_sync(producer.shutdown))
    _settle_stale(context, producer)
    if path is None:
        sender.schedule(context.scheduler)
    else:
        _launch_sender(context, settings, path)
    _report_figures(context, outbox, [target.key for target in configured])
    return Events(outbox, configured, producer, sender)


def _storage_fsyncs(context: SetupContext) -> bool:
    """Whether a storage root fsyncs its commits: then an intent is written as durably."""
    storage = context.config.storage
    return storage.commit or any(root.commit for root in (storage.subPaths or {}).values())


def _settle_stale(context: SetupContext, producer: Producer) -> None:
    """At start-up, and then now and again, settle what a dead process left unsettled, and
    what this one's commits did (see ``Producer.settle_stale``)."""

    async def settle() -> int:
        return await anyio.to_thread.run_sync(producer.settle_stale)

    context.scheduler.once(Task("events-settle", settle, Priority.HIGH))
    context.scheduler.every(
        "events-settle",
        SETTLE_SECONDS,
        lambda: [Task("events-settle", settle, Priority.HIGH)],
        Priority.HIGH,
        exclusive=False,  # each process settles its own (and any dead one's: idempotent)
    )


def _launch_sender(context: SetupContext, settings: EventsSettings, path: Path) -> None:
    """A process of its own delivers (see :mod:`.process`); started with the scheduler,
    started again should it end, stopped with the scheduler."""
    log = context.config.log
    launcher = Launcher(settings, path, log.level, log.output)
    context.scheduler.every(
        "events-sender",
        WATCH_SECONDS,
        lambda: [Task("events-sender", launcher.ensure, Priority.HIGH)],
        Priority.HIGH,
        first_delay=0.0,
        exclusive=False,  # each registry process keeps its own (see .process)
    )
    context.scheduler.at_stop(launcher.stop)


def _report_figures(context: SetupContext, outbox: Outbox, sinks: list[str]) -> None:
    metrics = context.app.extensions.get("metrics")
    if metrics is None:
        return
    from .figures import EventsCollector

    metrics.state.scrape.register(EventsCollector(outbox, sinks))


def prepare(config: Any, settings: EventsSettings) -> None:
    """Before any worker starts (``ocireg serve``): every file a sink reads can be read and
    used, or start-up stops with one line per problem naming the key."""
    problems = []
    for number, sink in enumerate(settings.sinks):
        where = f"configuration: extensions.events.sinks.{number}"
        files = {
            "tls.caCertFile": sink.tls.caCertFile if sink.tls else None,
            "tls.certFile": sink.tls.certFile if sink.tls else None,
            "tls.keyFile": sink.tls.keyFile if sink.tls else None,
            "signature.secretFile": sink.signature.secretFile if sink.signature else None,
            "credentials.file": sink.credentials.file if sink.credentials else None,
        }
        unreadable = [
            f"{where}.{key}: cannot read {path}"
            for key, path in files.items()
            if path is not None and not os.access(path, os.R_OK)
        ]
        problems += unreadable
        if not unreadable:
            try:
                tls_context(sink)
            except (OSError, ssl.SSLError) as exc:
                problems.append(f"{where}.tls: unusable: {exc}")
    if problems:
        raise ConfigError(problems)
