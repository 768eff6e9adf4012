"""Copying one image (a manifest, its blobs, and for an index its children) from an upstream.

An image is first *planned*: every manifest fetched and, unless ``preserveDigest``, converted
to OCI, without any blob. The plan is what an on-demand pull is answered with at once. It is then
*stored*: blobs through the shared downloads, then child manifests, then the image's own manifest
last, so a reader never finds a manifest whose content is missing. While it is stored, its
manifests are served from the plan to a pull by digest.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from ocireg.digests import Digest, digest_bytes, parse_digest
from ocireg.errors import RegistryError
from ocireg.logs import event
from ocireg.registry.manifests import Manifest, parse_manifest
from ocireg.registry.ondemand import ServedManifest
from ocireg.registry.store import Registry

from .convert import to_oci
from .downloads import Downloads, Source
from .store import Conversions
from .upstream import Fetched, UpstreamError

log = logging.getLogger("ocireg.sync")
PUSHER = "sync"


@dataclass
class Node:
    """One manifest of a planned image: as the upstream has it, and as it is stored here."""

    fetched: Fetched
    manifest: Manifest
    data: bytes
    media_type: str
    digest: str
    children: list[Node] = field(default_factory=list)

    def served(self) -> ServedManifest:
        return ServedManifest(self.data, self.media_type, self.digest)

    def walk(self) -> list[Node]:
        return [self, *(node for child in self.children for node in child.walk())]


class Images:
    def __init__(self, downloads: Downloads, conversions: Conversions) -> None:
        self.downloads = downloads
        self.conversions = conversions
        self.counters = downloads.counters
        self._copies: dict[tuple[int, str, str, tuple[str, ...]], asyncio.Task[None]] = {}
        self._inflight: dict[tuple[int, str, str], Node] = {}  # manifests being stored
        self._inflight_tags: dict[tuple[int, str, str], Node] = {}  # and the tags they get

    # -- planning -------------------------------------------------------------------------
    async def plan(self, source: Source, fetched: Fetched, preserve: bool) -> Node:
        try:
            manifest = parse_manifest(fetched.data, fetched.media_type, docker_compat=True)
        except RegistryError as error:
            raise UpstreamError(f"{source.repo}@{fetched.digest}: {error.detail}") from None
        children: list[Node] = []
        replaced: dict[str, dict[str, Any]] = {}
        for entry in manifest.manifests:
            child = await source.upstream.manifest(source.repo, str(entry.digest))
            if child is None:
                raise UpstreamError(f"{source.repo}: the index names {entry.digest}, not there")
            node = await self.plan(source, child, preserve)
            children.append(node)
            if node.digest != child.digest:
                replaced[child.digest] = {
                    "mediaType": node.media_type,
                    "digest": node.digest,
                    "size": len(node.data),
                }
        data, media_type = fetched.data, fetched.media_type
        converted = None if preserve else to_oci(data, media_type, replaced)
        if converted is not None:
            data, media_type = converted
        digest = str(digest_bytes(data))
        return Node(fetched, manifest, data, media_type, digest, children)

    def up_to_date(self, registry: Registry, repo: str, tag: str, fetched: Fetched) -> bool:
        """Whether ``tag`` here is already the upstream's manifest (or its conversion)."""
        index = registry.index(repo)
        entry = index.tags.get(tag) if index is not None else None
        if entry is None:
            return False
        return entry["digest"] in (fetched.digest, self.conversions.converted(repo, fetched.digest))

    def inflight(self, registry: Registry, repo: str, digest: str) -> Node | None:
        return self._inflight.get((id(registry), repo, digest))

    def inflight_tag(self, registry: Registry, repo: str, tag: str) -> Node | None:
        return self._inflight_tags.get((id(registry), repo, tag))

    def wants_blob(self, registry: Registry, repo: str, digest: Digest) -> bool:
        """Whether an image being stored into ``repo`` lists the blob ``digest``."""
        wanted = str(digest)
        for (registry_id, name, _), node in list(self._inflight.items()):
            if registry_id != id(registry) or name != repo or node.manifest.is_index:
                continue
            manifest = node.manifest
            blobs = [manifest.config, *manifest.layers] if manifest.config else manifest.layers
            if any(str(each.digest) == wanted for each in blobs):
                return True
        return False

    # -- storing --------------------------------------------------------------------------
    def start_copy(
        self, registry: Registry, repo: str, source: Source, node: Node, tags: list[str]
    ) -> asyncio.Task[None]:
        """Store the planned image in the background (one copy of it at a time)."""
        key = (id(registry), repo, node.digest, tuple(tags))
        running = self._copies.get(key)
        if running is not None:
            return running
        nodes = node.walk()
        for each in nodes:
            self._inflight[(id(registry), repo, each.digest)] = each
        for tag in tags:
            self._inflight_tags[(id(registry), repo, tag)] = node

        def finished(task: asyncio.Task[None]) -> None:
            self._copies.pop(key, None)
            for each in nodes:
                self._inflight.pop((id(registry), repo, each.digest), None)
            for tag in tags:
                if self._inflight_tags.get((id(registry), repo, tag)) is node:
                    del self._inflight_tags[(id(registry), repo, tag)]
            if not task.cancelled() and task.exception() is not None:
                self.counters.add("failures", source.upstream.urls[0])
                event(
                    log,
                    logging.ERROR,
                    "sync image failed",
                    repo=repo,
                    digest=node.digest,
                    tags=tags,
                    error=str(task.exception()),
                )

        task = asyncio.create_task(self.store(registry, repo, source, node, tags))
        self._copies[key] = task
        task.add_done_callback(finished)
        return task

    async def copy(
        self, registry: Registry, repo: str, source: Source, node: Node, tags: list[str]
    ) -> None:
        """Store the planned image and wait for it (UpstreamError when it could not be)."""
        task = self.start_copy(registry, repo, source, node, tags)
        await asyncio.shield(task)

    async def store(
        self, registry: Registry, repo: str, source: Source, node: Node, tags: list[str]
    ) -> None:
        for child in node.children:
            if not await registry.off_loop(_holds, registry, repo, child.digest):
                await self.store(registry, repo, source, child, [])
        manifest = node.manifest
        if not manifest.is_index:
            blobs = [manifest.config] if manifest.config else []
            wanted = {str(d.digest): d for d in [*blobs, *manifest.layers] if not d.external}
            await asyncio.gather(
                *(
                    self.downloads.ensure(registry, repo, parse_digest(digest), source)
                    for digest in wanted
                )
            )
        if tags:
            if await registry.off_loop(self.up_to_date, registry, repo, tags[0], node.fetched):
                return
        elif await registry.off_loop(_holds, registry, repo, node.digest):
            return
        reference = tags[0] if tags else node.digest
        try:
            await registry.put_manifest(
                repo, reference, node.data, node.media_type, tags[1:], PUSHER
            )
        except RegistryError as error:
            raise UpstreamError(f"{repo}@{node.digest}: refused here: {error.detail}") from None
        if node.digest != node.fetched.digest:
            self.conversions.record(repo, node.fetched.digest, node.digest)
        self.counters.add("images", source.upstream.urls[0])
        event(
            log,
            logging.INFO,
            "sync image stored",
            repo=repo,
            digest=node.digest,
            tags=tags,
            upstream=source.repo,
            source=node.fetched.digest,
        )


def _holds(registry: Registry, repo: str, digest: str) -> bool:
    index = registry.index(repo)
    return index is not None and digest in index.by_digest
