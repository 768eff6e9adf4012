"""``onlySigned``: an image is synced only when the upstream holds a signature of it that the
trust extension verifies.

Before the image is stored (or served on demand), its signatures are copied from the upstream:
notation and cosign referrers (the referrers API, or the referrers tag schema's index) and
cosign's legacy ``sha256-<hex>.sig`` tag. trust judges them at once, with the keys and
certificates uploaded here. The image is admitted when one of them is trusted; otherwise the
signatures this check copied are deleted again and the image is neither stored nor served, and
the reason is logged. zot's ``onlySigned`` only asks whether a signature exists; here it must
also verify, so that a mirror cannot be filled by anyone who can push a signature upstream.

A signature names the upstream digest of the image, so an upstream that copies an image under
onlySigned keeps its digest (Docker images are not converted to OCI).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ocireg.errors import RegistryError
from ocireg.logs import event
from ocireg.registry.manifests import parse_manifest
from ocireg.registry.signatures import cosign_tag, signature_kind
from ocireg.registry.store import Registry
from ocireg.state import AppState

from .downloads import Source
from .images import Images
from .referrers import Referrers
from .upstream import Fetched

log = logging.getLogger("ocireg.sync")
NO_SIGNATURE = (
    "the upstream has no signature of it (a notation or cosign referrer, or a legacy .sig tag)"
)


@dataclass(frozen=True)
class Copied:
    digest: str
    legacy_subject: str | None  # what a legacy .sig tag signs (trust cannot tell from the tag)
    new: bool  # copied by this check (deleted again when the image is refused)


class SignedOnly:
    def __init__(self, app: AppState, images: Images, referrers: Referrers) -> None:
        self.app = app
        self.images = images
        self.referrers = referrers

    async def refusal(
        self,
        registry: Registry,
        repo: str,
        source: Source,
        digest: str,
        tags: set[str] | None = None,
    ) -> str | None:
        """Why the upstream image ``digest`` must not be synced into ``repo``; None when one of
        its signatures is trusted. ``tags``: the upstream repository's tags, when known."""
        from ocireg.ext.trust.running import trust_of  # trust is imported only when it runs

        trust = trust_of(self.app)
        if trust is None:  # the configuration check refuses this; a test may build it anyway
            return "the trust extension is not running (extensions.trust)"
        copied = await self._copy_signatures(registry, repo, source, digest, tags)
        if not copied:
            return NO_SIGNATURE
        pairs = [(each.digest, each.legacy_subject) for each in copied]
        verdicts = await asyncio.to_thread(trust.judge_now, repo, pairs)
        if any(v.trusted and v.subject == digest for v in verdicts):
            return None
        for each in copied:
            if each.new:
                await _delete(registry, repo, each.digest)
        reasons = sorted({v.reason for v in verdicts if not v.trusted}) or ["no layer to verify"]
        return "no signature of it is trusted: " + "; ".join(reasons)

    async def admits(
        self,
        registry: Registry,
        repo: str,
        source: Source,
        digest: str,
        reference: str,
        tags: set[str] | None = None,
    ) -> bool:
        """Whether the upstream image ``digest`` (pulled or listed as ``reference``) may be
        synced into ``repo``; a refusal is logged with its reason."""
        why = await self.refusal(registry, repo, source, digest, tags)
        if why is None:
            return True
        event(log, logging.WARNING, "sync image refused: onlySigned", repo=repo,
              upstream=source.upstream.urls, source=source.repo, reference=reference,
              digest=digest, reason=why)  # fmt: skip
        return False

    async def _copy_signatures(
        self, registry: Registry, repo: str, source: Source, digest: str, tags: set[str] | None
    ) -> list[Copied]:
        copied = []
        for listed in await self.referrers.listed(source, digest, tags):
            fetched = await source.upstream.manifest(source.repo, listed)
            if fetched is None or not _is_signature(fetched):
                continue
            new = not await registry.off_loop(_holds, registry, repo, fetched.digest)
            if new:
                await self.referrers.store(registry, repo, source, fetched, [])
            copied.append(Copied(fetched.digest, None, new))
        tag = cosign_tag(digest)
        if tag is not None and (tags is None or tag in tags):
            fetched = await source.upstream.manifest(source.repo, tag)
            if fetched is not None and _is_signature(fetched):
                new = not await registry.off_loop(
                    self.images.up_to_date, registry, repo, tag, fetched
                )
                if new:
                    await self.referrers.store(registry, repo, source, fetched, [tag])
                copied.append(Copied(fetched.digest, digest, new))
        return copied


def _is_signature(fetched: Fetched) -> bool:
    manifest = parse_manifest(fetched.data, fetched.media_type, docker_compat=True)
    return bool(signature_kind(manifest))


def _holds(registry: Registry, repo: str, digest: str) -> bool:
    index = registry.index(repo)
    return index is not None and digest in index.by_digest


async def _delete(registry: Registry, repo: str, digest: str) -> None:
    try:
        await registry.delete_manifest(repo, digest)
    except RegistryError as error:  # gone meanwhile, or now listed by an index: left as it is
        event(log, logging.WARNING, "sync could not delete an untrusted signature", repo=repo,
              digest=digest, error=str(error.detail))  # fmt: skip
