"""Evaluating signatures: find what a signature manifest signs, verify each of its layers with
the tool's verifier, and store one verdict per layer.

Everything here blocks (storage, the meta DB, cryptography): callers run it in a thread, never
on the event loop. The verifiers are a mapping ``tool -> function`` so that the notation
verifier (``notation.py``) is imported only when a notation signature is evaluated, and so that a
test can stand in for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509

from ocireg.logs import event
from ocireg.meta.db import MetaDB
from ocireg.registry.manifests import Descriptor, Manifest
from ocireg.registry.routes import Registries
from ocireg.registry.signatures import cosign_tag_subject, signature_kind

from . import TrustSettings, cosign
from .material import CosignKey, load_certificate, load_key
from .store import LayerVerdict, TrustTables
from .verdict import Subject, TrustStore, Verdict

log = logging.getLogger("ocireg.trust")
LAYER_LIMIT = 8 * 1024 * 1024  # a signature layer larger than this is not read
BATCH = 200  # verdicts stored per transaction in a round


@dataclass(frozen=True)
class Material:
    """Everything uploaded, loaded once per round of evaluations."""

    keys: tuple[CosignKey, ...] = ()
    notation: TrustStore = field(default_factory=TrustStore)


# (layer descriptor, layer content, subject, material, now) -> verdict
Verifier = Callable[[Descriptor, bytes, Subject, Material, datetime], Verdict]


def _notation(
    layer: Descriptor, data: bytes, subject: Subject, got: Material, now: datetime
) -> Verdict:
    from .notation import verify_notation  # imported when a notation signature is judged

    return verify_notation(data, layer.media_type, subject, got.notation, now)


def _cosign(
    layer: Descriptor, data: bytes, subject: Subject, got: Material, _now: datetime
) -> Verdict:
    return cosign.verify_layer(layer.media_type, data, layer.annotations or {}, subject, got.keys)


VERIFIERS: dict[str, Verifier] = {"notation": _notation, "cosign": _cosign}


@dataclass(frozen=True)
class Found:
    """A signature manifest and what it signs."""

    tool: str
    subject: Subject
    manifest: Manifest


class Evaluator:
    def __init__(
        self,
        settings: TrustSettings,
        registries: Registries,
        meta: MetaDB,
        tables: TrustTables,
        verifiers: dict[str, Verifier] | None = None,
    ) -> None:
        self.settings = settings
        self.registries = registries
        self.meta = meta
        self.tables = tables
        self.verifiers = VERIFIERS if verifiers is None else verifiers

    def material(self) -> Material:
        keys = tuple(load_key(m.pem) for m in self.tables.material("cosign"))
        stores: dict[str, list[x509.Certificate]] = {"ca": [], "signingAuthority": [], "tsa": []}
        for each in self.tables.material("notation"):
            stores[each.store].append(load_certificate(each.pem))
        notation = TrustStore(
            ca=tuple(stores["ca"]),
            signing_authority=tuple(stores["signingAuthority"]),
            tsa=tuple(stores["tsa"]),
        )
        return Material(keys, notation)

    # -- finding ------------------------------------------------------------------------------
    def find(self, repo: str, digest: str, legacy: str | None = None) -> Found | None:
        """The signature manifest ``digest`` and its subject; None when it is none (any more).
        ``legacy``: the subject a ``sha256-<hex>.sig`` tag just pushed names (the meta DB
        may not know that tag yet)."""
        manifest = self.registries.of(repo).parsed_manifest(repo, digest)
        if manifest is None:
            return None
        tool = signature_kind(manifest)
        if not tool:
            return None
        if manifest.subject is not None:
            s = manifest.subject
            return Found(tool, Subject(str(s.digest), s.media_type, s.size), manifest)
        if tool != "cosign":
            return None
        signed = legacy or self._legacy_subjects(repo).get(digest)
        if signed is None:
            return None
        # cosign's payload names the digest only: the descriptor's other fields are not needed
        return Found(tool, Subject(signed, "", 0), manifest)

    def signatures(self, repo: str) -> Iterator[str]:
        """Every signature manifest of ``repo`` the meta DB knows (referrers and legacy tags)."""
        seen = {row["digest"] for row in self.meta.images(repo) if row.get("signature")}
        seen |= {d for tag, d in self.meta.tags(repo).items() if cosign_tag_subject(tag)}
        yield from sorted(seen)

    # -- judging ------------------------------------------------------------------------------
    def evaluate(
        self, repo: str, digest: str, got: Material | None = None, legacy: str | None = None
    ) -> int:
        """Judge one signature manifest and store its verdicts; how many layers are trusted."""
        verdicts = self.judge(repo, digest, self.material() if got is None else got, legacy)
        self.tables.put_verdicts(repo, digest, verdicts)
        return sum(v.trusted for v in verdicts)

    def judge(
        self, repo: str, digest: str, got: Material, legacy: str | None = None
    ) -> list[LayerVerdict]:
        """The verdicts of one signature manifest's layers; none when it is no signature (any
        more): storing none forgets it."""
        found = self.find(repo, digest, legacy)
        if found is None:
            return []
        now = datetime.now(UTC)
        return [
            self._layer(repo, digest, found, i, layer, got, now)
            for i, layer in enumerate(found.manifest.layers)
        ]

    def _layer(
        self,
        repo: str,
        digest: str,
        found: Found,
        position: int,
        layer: Descriptor,
        got: Material,
        now: datetime,
    ) -> LayerVerdict:
        verdict = self._judge(repo, found, layer, got, now)
        if not verdict.trusted:
            event(log, logging.INFO, "signature not trusted", repo=repo, signature=digest,
                  layer=position, tool=found.tool, subject=found.subject.digest,
                  reason=verdict.reason)  # fmt: skip
        valid_until = verdict.valid_until.timestamp() if verdict.valid_until else None
        return LayerVerdict(
            repo=repo,
            signature=digest,
            layer=position,
            subject=found.subject.digest,
            tool=found.tool,
            trusted=verdict.trusted,
            author=verdict.author if verdict.trusted else "",
            reason=verdict.reason,
            valid_until=valid_until,
        )

    def _judge(
        self, repo: str, found: Found, layer: Descriptor, got: Material, now: datetime
    ) -> Verdict:
        if not getattr(self.settings, found.tool):
            return Verdict.refused(
                f"{found.tool} verification is off (extensions.trust.{found.tool})"
            )
        if found.tool == "notation" and len(found.manifest.layers) != 1:
            return Verdict.refused("a notation signature has exactly one layer")
        data = self.registries.of(repo).blob_bytes(repo, layer.digest, LAYER_LIMIT)
        if data is None:
            return Verdict.refused(f"the layer {layer.digest} is missing or too large")
        try:
            return self.verifiers[found.tool](layer, data, found.subject, got, now)
        except Exception as exc:  # a verifier's bug must not stop the others
            log.exception("the %s verifier failed", found.tool)
            return Verdict.refused(f"the verifier failed: {type(exc).__name__}")

    # -- rounds -------------------------------------------------------------------------------
    def evaluate_all(self, pairs: list[tuple[str, str]]) -> int:
        """Judge each (repo, signature) with the material loaded once, storing the verdicts
        in batches of :data:`BATCH`; how many layers are trusted."""
        if not pairs:
            return 0
        got = self.material()
        legacy: dict[str, dict[str, str]] = {}  # repo -> signature digest -> what its tag signs
        judged: list[tuple[str, str, list[LayerVerdict]]] = []
        total = 0
        for repo, digest in pairs:
            if repo not in legacy:  # read each repository's tags once, not once a signature
                legacy[repo] = self._legacy_subjects(repo)
            verdicts = self.judge(repo, digest, got, legacy[repo].get(digest))
            judged.append((repo, digest, verdicts))
            total += sum(v.trusted for v in verdicts)
            if len(judged) >= BATCH:
                self.tables.put_many(judged)
                judged = []
        self.tables.put_many(judged)
        return total

    def _legacy_subjects(self, repo: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for tag, digest in self.meta.tags(repo).items():
            signed = cosign_tag_subject(tag)
            if signed is not None:
                found.setdefault(digest, signed)
        return found

    def of_tool(self, tool: str, *, trusted: bool) -> list[tuple[str, str]]:
        return self.tables.signatures_of_tool(tool, trusted=trusted)

    def unjudged(self, repo: str) -> list[tuple[str, str]]:
        known = self.tables.evaluated(repo)
        return [(repo, d) for d in self.signatures(repo) if d not in known]

    def everything(self, repo: str) -> list[tuple[str, str]]:
        return [(repo, d) for d in self.signatures(repo)]

    def lapsed(self) -> list[tuple[str, str]]:
        return self.tables.lapsed(time.time())

    # -- the gate -----------------------------------------------------------------------------
    def is_trusted(self, repo: str, digest: str) -> bool:
        """Whether the manifest ``digest`` of ``repo`` has a trusted signature that is still
        there (a legacy cosign signature only while its tag points at it), or is listed by an
        index that has one (``cosign sign`` of an index signs the index)."""
        if self._signed(repo, digest):
            return True
        parents = [row["digest"] for row in self.meta.images(repo) if digest in row["children"]]
        return any(self._signed(repo, parent) for parent in parents)

    def _signed(self, repo: str, digest: str) -> bool:
        now = time.time()
        for verdict in self.tables.verdicts_for_subject(repo, digest):
            if not verdict.trusted or (
                verdict.valid_until is not None and verdict.valid_until <= now
            ):
                continue
            if self.find(repo, verdict.signature) is not None and self._present(repo, verdict):
                return True
        return False

    def _present(self, repo: str, verdict: LayerVerdict) -> bool:
        row = self.meta.image(repo, verdict.signature)
        if row is not None and row.get("subject"):
            return True
        tag = f"{verdict.subject.replace(':', '-')}.sig"
        return self.meta.tag_digest(repo, tag) == verdict.signature
