"""Copying what refers to an image: the referrers API's answer, or, from an upstream without
it (distribution 2.8), the referrers tag schema's index (``sha256-<hex>``); and zot's legacy
cosign tags (``sha256-<hex>.sig``, ``.sbom``, ``.att``) when ``syncLegacyCosignTags`` is on.
Referrers are copied as they are (their digests are what signatures name)."""

from __future__ import annotations

from ocireg.registry.manifests import parse_manifest
from ocireg.registry.store import Registry

from .downloads import Source
from .images import Images
from .upstream import Fetched

LEGACY_SUFFIXES = (".sig", ".sbom", ".att")


class Referrers:
    def __init__(self, images: Images) -> None:
        self.images = images

    async def copy(
        self,
        registry: Registry,
        repo: str,
        source: Source,
        subject: str,
        legacy: bool = True,
        tags: set[str] | None = None,
    ) -> int:
        """Copy the subject's referrers (and legacy tags); how many were new here. ``tags``:
        the upstream repository's tags when known, so tags it does not have are not asked."""
        copied = 0
        for digest in await self.listed(source, subject, tags):
            index = await registry.off_loop(registry.index, repo)
            if index is not None and digest in index.by_digest:
                continue
            fetched = await source.upstream.manifest(source.repo, digest)
            if fetched is None:
                continue
            await self.store(registry, repo, source, fetched, [])
            copied += 1
        if legacy:
            copied += await self._legacy(registry, repo, source, subject, tags)
        return copied

    async def listed(self, source: Source, subject: str, tags: set[str] | None) -> list[str]:
        listed = await source.upstream.referrers(source.repo, subject)
        if listed is None:  # no referrers API: the tag schema's index, if any
            if tags is not None and _tag_of(subject) not in tags:
                return []
            fallback = await source.upstream.manifest(source.repo, _tag_of(subject))
            if fallback is None:
                return []
            manifest = parse_manifest(fallback.data, fallback.media_type, docker_compat=True)
            return [str(entry.digest) for entry in manifest.manifests]
        return [str(d["digest"]) for d in listed if isinstance(d.get("digest"), str)]

    async def _legacy(
        self, registry: Registry, repo: str, source: Source, subject: str, tags: set[str] | None
    ) -> int:
        copied = 0
        for suffix in LEGACY_SUFFIXES:
            tag = _tag_of(subject) + suffix
            if tags is not None and tag not in tags:
                continue
            fetched = await source.upstream.manifest(source.repo, tag)
            if fetched is None or await registry.off_loop(
                self.images.up_to_date, registry, repo, tag, fetched
            ):
                continue
            await self.store(registry, repo, source, fetched, [tag])
            copied += 1
        return copied

    async def store(
        self, registry: Registry, repo: str, source: Source, fetched: Fetched, tags: list[str]
    ) -> None:
        node = await self.images.plan(source, fetched, preserve=True)
        await self.images.copy(registry, repo, source, node, tags)


def _tag_of(digest: str) -> str:
    return digest.replace(":", "-", 1)
