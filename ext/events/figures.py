"""Prometheus figures per sink, read from the outbox when Prometheus scrapes (so every worker
process answers the same, whichever one delivers)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .store import Outbox


class EventsCollector(Collector):
    def __init__(self, outbox: Outbox, sinks: list[str]) -> None:
        self.outbox = outbox
        self.sinks = sinks  # configured ones show, at zero, before their first event

    def collect(self) -> Iterator[Metric]:
        figures = self.outbox.figures()
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "sent": CounterMetricFamily(
                "ocireg_events_sent", "Events delivered, per sink.", labels=["sink"]
            ),
            "failed": CounterMetricFamily(
                "ocireg_events_failed", "Failed delivery attempts, per sink.", labels=["sink"]
            ),
            "dropped": CounterMetricFamily(
                "ocireg_events_dropped",
                "Undelivered events dropped because the sink's backlog was full.",
                labels=["sink"],
            ),
            "queued": GaugeMetricFamily(
                "ocireg_events_queued", "Events waiting for delivery, per sink.", labels=["sink"]
            ),
        }
        for sink in self.sinks:
            found = figures.get(sink)
            for name, family in families.items():
                family.add_metric([sink], getattr(found, name) if found else 0)
        yield from families.values()
