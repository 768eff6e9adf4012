"""A stand-in for the notation envelope verifier, loaded into a live registry as an extension
(``OCIREG_EXTENSIONS``) whose setup puts it in trust's verifier table: the tests of the notation
path (detection, stored verdicts, search, re-evaluation on certificate changes, expiry) then
run before the real verifier (``ext/trust/notation.py``) lands.

Its "envelope" is JSON: ``{"signs": <digest>, "author": ..., "validUntil": <ISO time>}``. It
answers trusted only when the envelope signs the subject and a ``ca`` certificate is uploaded,
so that uploads and deletions change its verdicts as they would the real one's.
"""

from __future__ import annotations

import json
from datetime import datetime

from ocireg.ext.trust import evaluate
from ocireg.ext.trust.verdict import Subject, TrustStore, Verdict
from ocireg.extensions.declaration import Extension
from ocireg.extensions.runtime import SetupContext
from ocireg.registry.manifests import Descriptor

ENVELOPE = "application/jose+json"


def verify(
    layer: Descriptor, data: bytes, subject: Subject, got: evaluate.Material, now: datetime
) -> Verdict:
    return verify_notation(data, layer.media_type, subject, got.notation, now)


def verify_notation(
    envelope: bytes, envelope_type: str, subject: Subject, store: TrustStore, now: datetime
) -> Verdict:
    claims = json.loads(envelope)
    if envelope_type != ENVELOPE:
        return Verdict.refused(f"unexpected envelope type {envelope_type}")
    if claims["signs"] != subject.digest:
        return Verdict.refused("signs another manifest")
    if not store.ca:
        return Verdict.refused("no CA certificate")
    until = datetime.fromisoformat(claims["validUntil"]) if claims.get("validUntil") else None
    if until is not None and until <= now:
        return Verdict.refused("certificate expired")
    return Verdict(trusted=True, author=claims["author"], valid_until=until)


def setup(_context: SetupContext) -> None:
    evaluate.VERIFIERS["notation"] = verify


EXTENSION = Extension(
    name="fakenotation",
    description="Test only: a stand-in notation verifier.",
    setup="tests.ext.fakenotation:setup",
)
