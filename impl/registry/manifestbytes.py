"""Manifests' bytes kept per process by digest, bounded by their total size.

A manifest GET by tag on S3 costs two requests: ``index.json`` (which says what the tag
points at, and must be read each time: another instance may have moved it) and the manifest
blob. The blob's content never changes under its digest, so the second is kept here, and a
pushed manifest is kept as it is written. The index is still asked first, so a manifest that
was deleted is not served from here. Threads share it (a large manifest is pushed off the
event loop).

The registry keeps image configs in another instance (``Registry.small_blob``): the meta DB
reads the config of every manifest pushed, and a manifest pushed again under another tag has
the same one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

BUDGET_BYTES = 16 * 1024 * 1024
LARGEST_SHARE = 64  # no manifest over 256 KiB is kept: such are rare, and each would crowd out many


class ManifestBytes:
    def __init__(self, budget: int = BUDGET_BYTES) -> None:
        self.budget = budget
        self.used = 0
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            found = self._entries.get(digest)
            if found is not None:
                self._entries.move_to_end(digest)
            return found

    def put(self, digest: str, data: bytes) -> None:
        if len(data) > self.budget // LARGEST_SHARE:
            return
        with self._lock:
            previous = self._entries.pop(digest, None)
            if previous is not None:
                self.used -= len(previous)
            self._entries[digest] = data
            self.used += len(data)
            while self.used > self.budget:
                _, gone = self._entries.popitem(last=False)
                self.used -= len(gone)

    def __len__(self) -> int:
        return len(self._entries)
