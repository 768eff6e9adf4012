"""What sync counts, per upstream: images and blobs stored, blobs taken from storage, bytes,
failures. Exported by the metrics extension when it is on (``ocireg_sync_*_total{upstream}``);
otherwise only counted."""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol


class Counting(Protocol):
    def add(self, kind: str, upstream: str, amount: int = 1) -> None: ...


class SyncCounters:
    """Totals in this process, and the Prometheus counters when metrics are exported."""

    KINDS = ("images", "blobs", "local_blobs", "bytes", "failures")

    def __init__(self) -> None:
        self.totals: Counter[tuple[str, str]] = Counter()
        self._exported: dict[str, Any] = {}

    def export_to(self, registry: Any) -> None:
        """Create the counters in the metrics extension's (prometheus_client) registry."""
        from prometheus_client import Counter as PromCounter

        what = {
            "images": "Images (manifests) stored by sync.",
            "blobs": "Blobs stored by sync.",
            "local_blobs": "Blobs sync took from this registry's dedupe store, not fetched.",
            "bytes": "Bytes of blobs stored by sync.",
            "failures": "Blob downloads and image copies that failed.",
        }
        for kind in self.KINDS:
            self._exported[kind] = PromCounter(
                f"ocireg_sync_{kind}", what[kind], ["upstream"], registry=registry
            )

    def add(self, kind: str, upstream: str, amount: int = 1) -> None:
        self.totals[(kind, upstream)] += amount
        exported = self._exported.get(kind)
        if exported is not None:
            exported.labels(upstream).inc(amount)
