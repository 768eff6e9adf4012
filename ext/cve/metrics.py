"""CVE scanning's figures for Prometheus, read from the meta DB when scraped, so every worker
process answers the same thing (scans happen in whichever process the scheduler picked)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .store import CveStore


class CveCollector(Collector):
    """``ocireg_cve_scans_total`` (every match of an image: at push, in the background, after
    an update), ``ocireg_cve_layers_read_total``/``ocireg_cve_layers_reused_total`` (layers a
    scan read, and those whose kept reading served instead), ``ocireg_cve_images_scanned`` and
    ``ocireg_cve_advisories``."""

    def __init__(self, meta_db: Path) -> None:
        self.meta_db = meta_db
        self._store: CveStore | None = None

    def collect(self) -> Iterator[Metric]:
        if self._store is None:
            self._store = CveStore.reader(self.meta_db)
        counts = self._store.scan_counts()
        scans = CounterMetricFamily(
            "ocireg_cve_scans", "Images matched against the CVE data, counted per match."
        )
        scans.add_metric([], sum(counts.values()))
        yield scans
        images = GaugeMetricFamily("ocireg_cve_images_scanned", "Image manifests scanned.")
        images.add_metric([], len(counts))
        yield images
        read, reused = self._store.layer_counts()
        layers = CounterMetricFamily(
            "ocireg_cve_layers_read", "Layers read by scans (each once while its reading is kept)."
        )
        layers.add_metric([], read)
        yield layers
        reuses = CounterMetricFamily(
            "ocireg_cve_layers_reused",
            "Layers a scan did not read: their reading, kept from another image's scan, served.",
        )
        reuses.add_metric([], reused)
        yield reuses
        advisories = GaugeMetricFamily("ocireg_cve_advisories", "OSV advisories held.")
        advisories.add_metric([], self._store.advisory_count())
        yield advisories
