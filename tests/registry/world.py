"""A registry on the memory driver with a clock tests move forward, and helpers to fill it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from ocireg.digests import digest_bytes
from ocireg.registry import layout
from ocireg.registry import mediatypes as mt
from ocireg.registry.gc import Collected, GarbageCollector
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.store import Registry
from ocireg.registry.uploads import ChunkInfo
from ocireg.storage.memory import MemoryDriver

DELAY = 3600.0
CONFIG = b'{"architecture":"amd64","os":"linux"}'


class World:
    def __init__(self) -> None:
        self.offset = 0.0
        driver = MemoryDriver(clock=self.now)
        self.registry = Registry(driver, KeyedLocks(None))
        self.gc = GarbageCollector(self.registry, DELAY, clock=self.now)

    def now(self) -> float:
        return time.time() + self.offset

    def later(self, seconds: float = DELAY + 1) -> None:
        self.offset += seconds

    def collect(self, repo: str) -> Collected:
        return asyncio.run(self.gc.collect(repo))

    def blob(self, repo: str, data: bytes) -> dict[str, Any]:
        async def push() -> None:
            await self.registry.ensure_repository(repo)
            session = await self.registry.uploads.start(repo)

            async def body() -> AsyncIterator[bytes]:
                yield data

            digest = digest_bytes(data)
            await self.registry.uploads.complete(repo, session, digest, body(), ChunkInfo())

        asyncio.run(push())
        return {"mediaType": mt.OCI_EMPTY, "digest": str(digest_bytes(data)), "size": len(data)}

    def image(self, repo: str, layer: bytes, reference: str, **fields: Any) -> dict[str, Any]:
        config = self.blob(repo, CONFIG)
        config["mediaType"] = "application/vnd.oci.image.config.v1+json"
        document = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": config,
            "layers": [self.blob(repo, layer)],
            **fields,
        }
        return self.manifest(repo, document, reference)

    def manifest(self, repo: str, document: dict[str, Any], reference: str) -> dict[str, Any]:
        data = json.dumps(document).encode()
        tag = None if reference.startswith("sha256:") else reference
        ref = reference if tag else str(digest_bytes(data))
        asyncio.run(self.registry.put_manifest(repo, ref, data, document["mediaType"], []))
        return {
            "mediaType": document["mediaType"],
            "digest": str(digest_bytes(data)),
            "size": len(data),
        }

    def blobs(self, repo: str) -> set[str]:
        driver = self.registry.driver
        if not driver.exists(layout.blobs_dir(repo)):
            return set()
        return {
            f"{folder.rsplit('/', 1)[-1]}:{path.rsplit('/', 1)[-1]}"
            for folder in driver.list(layout.blobs_dir(repo))
            for path in driver.list(folder)
        }

    def manifests(self, repo: str) -> set[str]:
        index = self.registry.index(repo)
        return set(index.by_digest) if index else set()
