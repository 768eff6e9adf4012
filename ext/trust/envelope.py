"""A Notary Project signature envelope once parsed, whatever its format (JWS or COSE).

The parsers (``jws.py``, ``cose.py``) check everything that is particular to their format,
critical headers included; what they hand over is what the signature specification itself
talks about: the payload, the signed attributes and the unsigned ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

PAYLOAD_MEDIA_TYPE = "application/vnd.cncf.notary.payload.v1+json"
SCHEME_X509 = "notary.x509"
SCHEME_SIGNING_AUTHORITY = "notary.x509.signingAuthority"

# Signed attribute names, the same in both envelopes (COSE uses them as text labels).
SIGNING_SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
AUTHENTIC_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
EXPIRY = "io.cncf.notary.expiry"
VERIFICATION_PLUGIN = "io.cncf.notary.verificationPlugin"
VERIFICATION_PLUGIN_MIN_VERSION = "io.cncf.notary.verificationPluginMinVersion"
# Unsigned attribute names.
TIMESTAMP_SIGNATURE = "io.cncf.notary.timestampSignature"
SIGNING_AGENT = "io.cncf.notary.signingAgent"

# The critical attributes ocireg understands and processes; any other critical one fails.
# The plugin attributes are not here: ocireg runs no plugin and cannot do a plugin's checks.
UNDERSTOOD_CRITICAL = frozenset({SIGNING_SCHEME, AUTHENTIC_SIGNING_TIME, EXPIRY})
# Attributes that, when present, the specification says are critical.
MUST_BE_CRITICAL = (SIGNING_SCHEME, AUTHENTIC_SIGNING_TIME, EXPIRY)


class Refusal(Exception):
    """A signature is not trusted; the message says why, for the verdict's ``reason``."""


@dataclass(frozen=True)
class SignedEnvelope:
    payload: bytes
    signing_input: bytes  # the exact bytes the primitive signature covers
    signature: bytes  # the primitive signature as the envelope carries it (ECDSA: r || s)
    alg: str  # the JOSE name of the declared algorithm (PS256 ... ES512), for both formats
    content_type: str
    signing_scheme: str
    signing_time: datetime | None
    authentic_signing_time: datetime | None
    expiry: datetime | None
    certificates: tuple[bytes, ...]  # DER, signing certificate first
    timestamp_token: bytes | None


def check_critical(critical: list[str], present: set[str]) -> None:
    """The specification's rules on the critical list, shared by both formats: every name in it
    is understood and present, and the attributes that must be critical are listed."""
    if len(set(critical)) != len(critical):
        raise Refusal("the critical header list names a header twice")
    for name in critical:
        if name in (VERIFICATION_PLUGIN, VERIFICATION_PLUGIN_MIN_VERSION):
            raise Refusal(
                f"critical header {name!r} asks for a verification plugin; none runs here"
            )
        if name not in UNDERSTOOD_CRITICAL:
            raise Refusal(f"unknown critical header {name!r}")
        if name not in present:
            raise Refusal(f"critical header {name!r} is listed but absent")
    for name in MUST_BE_CRITICAL:
        if name in present and name not in critical:
            raise Refusal(f"header {name!r} is present but not marked critical")


def check_signed_attributes(
    scheme: object,
    content_type: object,
    signing_time: datetime | None,
    authentic_signing_time: datetime | None,
) -> str:
    """Which attributes each signing scheme requires and allows; answers the scheme."""
    if content_type != PAYLOAD_MEDIA_TYPE:
        raise Refusal(f"unsupported payload content type {content_type!r}")
    if scheme == SCHEME_X509:
        if signing_time is None:
            raise Refusal(f"signing scheme {SCHEME_X509} requires {SIGNING_TIME}")
        if authentic_signing_time is not None:
            raise Refusal(f"{AUTHENTIC_SIGNING_TIME} is not valid under {SCHEME_X509}")
        return SCHEME_X509
    if scheme == SCHEME_SIGNING_AUTHORITY:
        if authentic_signing_time is None:
            raise Refusal(
                f"signing scheme {SCHEME_SIGNING_AUTHORITY} requires {AUTHENTIC_SIGNING_TIME}"
            )
        if signing_time is not None:
            raise Refusal(f"{SIGNING_TIME} is not valid under {SCHEME_SIGNING_AUTHORITY}")
        return SCHEME_SIGNING_AUTHORITY
    raise Refusal(f"unsupported signing scheme {scheme!r}")
