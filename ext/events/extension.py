"""Setting the events extension up: the outbox, the producer on the request path, the sender
in the scheduler and, when the metrics extension is on, the per-sink figures."""

from __future__ import annotations

from dataclasses import dataclass

from ocireg.extensions.runtime import SetupContext
from ocireg.meta.db import SQLiteMetaDB

from . import EventsSettings
from .production import Producer
from .sender import Sender
from .sinkset import Target, targets
from .store import Outbox


@dataclass
class Events:
    outbox: Outbox
    targets: list[Target]
    producer: Producer
    sender: Sender


def _outbox(context: SetupContext) -> Outbox:
    meta = context.app.meta
    path = meta.path if isinstance(meta, SQLiteMetaDB) else None
    return Outbox(path)


def setup(context: SetupContext) -> Events:
    settings: EventsSettings = context.settings
    outbox = _outbox(context)
    configured = targets(settings.sinks)
    producer = Producer(outbox, configured, settings.typePrefix, context.registries)
    sender = Sender(outbox, configured, settings.source)
    if configured:
        context.observe(producer)
        context.on_removal(producer.manifest_removed)
        context.on_refusal(producer.manifest_refused)
    sender.schedule(context.scheduler)
    _report_figures(context, outbox, [target.key for target in configured])
    return Events(outbox, configured, producer, sender)


def _report_figures(context: SetupContext, outbox: Outbox, sinks: list[str]) -> None:
    metrics = context.app.extensions.get("metrics")
    if metrics is None:
        return
    from .figures import EventsCollector

    metrics.state.scrape.register(EventsCollector(outbox, sinks))
