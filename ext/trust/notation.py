"""The Notary Project signature verifier: one envelope (JWS or COSE), the manifest it claims to
sign, the uploaded truststores and the time, in; a verdict, out.

It follows the trust policy zot runs notation with: every repository, level ``strict``, the
``ca``, ``signingAuthority`` and ``tsa`` truststores, any identity. The steps and their order
are the trust policy specification's: integrity, authenticity, expiry, authentic timestamp.
Revocation (OCSP, CRL) is not checked: ocireg verifies offline.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ocireg import jsonparse
from ocireg.publickeys import certificate_public_key

from . import cose, jws
from .algorithms import algorithm_of, verify_primitive
from .chain import Purpose, check_chain, check_validity, load_chain, trusted_certificate
from .envelope import SCHEME_SIGNING_AUTHORITY, SCHEME_X509, Refusal, SignedEnvelope
from .timestamp import verify_timestamp
from .verdict import Subject, TrustStore, Verdict

log = logging.getLogger("ocireg.trust")
_PARSERS = {jws.MEDIA_TYPE: jws.parse, cose.MEDIA_TYPE: cose.parse}
# Go's pkix.Name.String() names these two, which RFC 4514 leaves as dotted OIDs: zot shows
# the author as Go prints it.
_GO_ATTRIBUTE_NAMES = {NameOID.SERIAL_NUMBER: "SERIALNUMBER", NameOID.POSTAL_CODE: "POSTALCODE"}


def verify_notation(
    envelope: bytes, envelope_type: str, subject: Subject, store: TrustStore, now: datetime
) -> Verdict:
    """Never raises on bad input: every failure is a refused verdict that says why."""
    parser = _PARSERS.get(envelope_type)
    if parser is None:
        return Verdict.refused(f"unsupported signature envelope type {envelope_type!r}")
    try:
        signed = parser(envelope)
        chain = load_chain(signed.certificates)
        _check_integrity(signed, chain[0], subject)
        _check_authenticity(signed, chain, store)
        _check_expiry(signed, now)
        time_is_authentic = _check_authentic_time(signed, chain, store, now)
    except Refusal as refusal:
        return Verdict.refused(str(refusal))
    except Exception:  # a bug here must not make a bad signature look like a crash to a caller
        log.exception("notation verification failed unexpectedly")
        return Verdict.refused("the signature could not be verified (internal error, logged)")
    leaf = chain[0]
    return Verdict(
        trusted=True,
        author=leaf.subject.rfc4514_string(_GO_ATTRIBUTE_NAMES),
        valid_until=signed.expiry if time_is_authentic else _valid_until(signed, chain),
        details={"signingScheme": signed.signing_scheme},
    )


def _check_integrity(signed: SignedEnvelope, leaf: x509.Certificate, subject: Subject) -> None:
    key = certificate_public_key(leaf)
    expected = algorithm_of(key)
    if signed.alg != expected:
        raise Refusal(f"declared algorithm {signed.alg} is not {expected}, the signing key's")
    verify_primitive(key, signed.alg, signed.signing_input, signed.signature)
    _check_target(_target_artifact(signed.payload), subject)


def _target_artifact(payload: bytes) -> dict[str, Any]:
    try:
        document = jsonparse.loads(payload, strict=True)
    except jsonparse.JSONError as error:
        raise Refusal(f"the signed payload is not acceptable JSON: {error}") from None
    target = document.get("targetArtifact") if isinstance(document, dict) else None
    if not isinstance(target, dict):
        raise Refusal("the signed payload has no targetArtifact descriptor")
    return target


def _check_target(target: dict[str, Any], subject: Subject) -> None:
    size = target.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        raise Refusal("the signed targetArtifact has no integer size")
    for field, signed_value, actual in (
        ("digest", target.get("digest"), subject.digest),
        ("mediaType", target.get("mediaType"), subject.media_type),
        ("size", size, subject.size),
    ):
        if signed_value != actual:
            raise Refusal(f"the signature is for {field} {signed_value!r}, not {actual!r}")


def _check_authenticity(
    signed: SignedEnvelope, chain: list[x509.Certificate], store: TrustStore
) -> None:
    check_chain(chain, Purpose.CODE_SIGNING)
    # The chain must have been valid when the signature says it was made (the authentic
    # signing time under signingAuthority, the signer's own claim under x509).
    claimed = signed.authentic_signing_time or signed.signing_time
    assert claimed is not None  # the parsers require the time their scheme requires
    check_validity(chain, claimed, claimed, "at the signing time")
    if signed.signing_scheme == SCHEME_SIGNING_AUTHORITY:
        trusted, store_name = store.signing_authority, "signingAuthority"
    else:
        trusted, store_name = store.ca, "ca"
    if trusted_certificate(chain, trusted) is None:
        raise Refusal(
            f"no certificate of the chain is in the {store_name} truststore, "
            f"which signing scheme {signed.signing_scheme} requires"
        )


def _check_expiry(signed: SignedEnvelope, now: datetime) -> None:
    if signed.expiry is not None and now >= signed.expiry:
        raise Refusal(f"the signature expired at {signed.expiry.isoformat()}")


def _check_authentic_time(
    signed: SignedEnvelope, chain: list[x509.Certificate], store: TrustStore, now: datetime
) -> bool:
    """The chain valid when the signature was made, by a time someone other than the signer
    vouches for (answers True), or else valid now. A timestamp is verified when one is present
    and a tsa certificate is uploaded; it is required only once the chain has expired (zot's
    fixed policy lists a tsa truststore, and notation's `always` would then refuse every
    signature without one as soon as any tsa certificate is uploaded)."""
    if signed.signing_scheme == SCHEME_SIGNING_AUTHORITY:
        assert signed.authentic_signing_time is not None
        at = signed.authentic_signing_time
        check_validity(chain, at, at, "at the authentic signing time")
        return True
    assert signed.signing_scheme == SCHEME_X509
    if signed.timestamp_token is not None and store.tsa:
        stamped = verify_timestamp(signed.timestamp_token, signed.signature, store.tsa)
        check_validity(chain, stamped.lower, stamped.upper, "at the timestamp's time")
        return True
    check_validity(chain, now, now, "now")
    return False


def _valid_until(signed: SignedEnvelope, chain: list[x509.Certificate]) -> datetime:
    """When a verdict that rests on the chain being valid now lapses: the leaf's expiry, or
    earlier when another certificate of the chain expires first or the signer set an expiry.
    A verdict resting on an authentic signing time lapses only with the signer's expiry."""
    ends = [certificate.not_valid_after_utc for certificate in chain]
    if signed.expiry is not None:
        ends.append(signed.expiry)
    return min(ends)
