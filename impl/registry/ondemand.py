"""What the read path asks when content may live elsewhere: an extension (sync) that fetches
from an upstream what a pull misses here. Handlers call it after the caller is authorized.

``manifest`` is asked on a local miss, and for a tag on every pull (the provider decides how
often it really asks its upstream): it answers with a manifest to serve as is, or None for
"serve what is stored" (a local hit, or a 404). ``blob`` is asked on a local miss: it answers
with the blob's size and its bytes (streamed while they are stored), or None. ``referrers`` is
asked before a referrers list is made from what is stored.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

from ocireg.digests import Digest

# The registry asking (an ocireg.registry.store.Registry): not imported, since the store
# imports this module for its on_demand attribute (tests/test_layers.py forbids the circle).
Registry = Any


@dataclass(frozen=True)
class ServedManifest:
    data: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class BlobSource:
    """A blob coming from elsewhere: its size and its bytes (views of what the provider holds,
    or bytes), or no bytes when it has been stored here meanwhile (then it is served as a
    stored blob)."""

    size: int
    chunks: AsyncGenerator[bytes | memoryview, None] | None


class OnDemand(Protocol):
    async def manifest(
        self, registry: Registry, repo: str, reference: str
    ) -> ServedManifest | None: ...

    async def blob(self, registry: Registry, repo: str, digest: Digest) -> BlobSource | None: ...

    async def referrers(self, registry: Registry, repo: str, digest: Digest) -> None: ...
