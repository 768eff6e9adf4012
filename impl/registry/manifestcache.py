"""Parsed manifests kept per process, bounded by their estimated size in memory, not by count.

A parsed manifest costs about three times its JSON (a 4 MiB manifest of 28,000 layers holds
some 13 MB of descriptor objects), so a bound by count let a few hundred large pushes hold
gigabytes. Here each entry is charged ``COST_FACTOR`` times its JSON size, the least recently
used entries go once the total passes the budget, and a manifest that alone costs more than a
sixteenth of the budget (about 700 KB of JSON, some 4,500 layers) is never kept: it is parsed
again when needed (GC, the meta DB), rare next to the memory a few of them would hold for good
in every worker process. Threads share it (the
meta DB's flush and a blob delete read manifests off the event loop).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ocireg.registry.manifests import Manifest

BUDGET_BYTES = 32 * 1024 * 1024
LARGEST_SHARE = 16  # no entry costs more than budget / LARGEST_SHARE
COST_FACTOR = 3  # measured: 13.2 MB of objects for 4.5 MB of JSON
_ENTRY_OVERHEAD = 1024  # the Manifest object, its dict slot and a few small strings


def estimated_cost(json_size: int) -> int:
    return json_size * COST_FACTOR + _ENTRY_OVERHEAD


class ManifestCache:
    def __init__(self, budget: int = BUDGET_BYTES) -> None:
        self.budget = budget
        self.used = 0
        self._entries: OrderedDict[str, tuple[Manifest, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> Manifest | None:
        with self._lock:
            found = self._entries.get(digest)
            if found is None:
                return None
            self._entries.move_to_end(digest)
            return found[0]

    def put(self, digest: str, manifest: Manifest, json_size: int) -> None:
        cost = estimated_cost(json_size)
        if cost > self.budget // LARGEST_SHARE:
            return
        with self._lock:
            previous = self._entries.pop(digest, None)
            if previous is not None:
                self.used -= previous[1]
            self._entries[digest] = (manifest, cost)
            self.used += cost
            while self.used > self.budget:
                _, (_, gone) = self._entries.popitem(last=False)
                self.used -= gone

    def __len__(self) -> int:
        return len(self._entries)
