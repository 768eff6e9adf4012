"""What a signature verifier is given and what it answers, shared by notation and cosign.

A verifier is a pure function of the signature, the signed subject, the uploaded trust material
and the time: it reads no storage and keeps no state, so the same signature can be evaluated
again whenever a key or certificate is uploaded or removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509


@dataclass(frozen=True)
class Subject:
    """The manifest a signature signs (its descriptor, as the signature's ``subject`` says)."""

    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class TrustStore:
    """Notation's truststores as uploaded (zot's ``truststoreType``): ``ca``,
    ``signingAuthority`` and ``tsa`` certificates."""

    ca: tuple[x509.Certificate, ...] = ()
    signing_authority: tuple[x509.Certificate, ...] = ()
    tsa: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """``trusted`` and, when trusted, who signed (``author``: the signing certificate's subject
    for notation, the public key for cosign, as zot shows it); otherwise ``reason`` says why not.
    ``valid_until`` is when a trusted verdict lapses (the signing certificate's expiry), so that
    periodic re-evaluation knows which verdicts can change with time alone."""

    trusted: bool
    author: str = ""
    reason: str = ""
    valid_until: datetime | None = None
    details: dict[str, str] = field(default_factory=dict)

    @classmethod
    def refused(cls, reason: str) -> Verdict:
        return cls(trusted=False, reason=reason)
