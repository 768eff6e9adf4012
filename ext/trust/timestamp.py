"""RFC 3161 timestamp countersignatures: a TimeStampToken (CMS SignedData over a TSTInfo)
verified as the Notary Project's trust policy says, against uploaded ``tsa`` certificates.

What a verified token proves is that the envelope's primitive signature existed at the stamped
time, within the token's accuracy: the answer is that time range.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from ocireg.publickeys import certificate_public_key

from .chain import Purpose, check_chain, check_validity, trusted_certificate
from .envelope import Refusal

_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_BASELINE_POLICY = "0.4.0.2023.1.1"  # ETSI TS 102 023 baseline time-stamp policy (RFC 3628)
_MAX_CHAIN = 8
_MALFORMED = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    x509.InvalidVersion,
    UnsupportedAlgorithm,
)


@dataclass(frozen=True)
class StampedTime:
    lower: datetime
    upper: datetime


def verify_timestamp(
    token: bytes, signature: bytes, trusted_tsa: Sequence[x509.Certificate]
) -> StampedTime:
    """The time range a token proves ``signature`` existed in, or a Refusal saying why not."""
    try:
        return _verify(token, signature, trusted_tsa)
    except Refusal:
        raise
    except _MALFORMED:
        # asn1crypto and cryptography parse lazily: a malformed token surfaces as any of
        # these, wherever a field is first read
        raise Refusal("the timestamp token is not a well-formed RFC 3161 TimeStampToken") from None


def _verify(token: bytes, signature: bytes, trusted_tsa: Sequence[x509.Certificate]) -> StampedTime:
    content_info = cms.ContentInfo.load(token, strict=True)
    if content_info["content_type"].native != "signed_data":
        raise Refusal("the timestamp token is not CMS SignedData")
    signed = content_info["content"]
    encapsulated = signed["encap_content_info"]
    if encapsulated["content_type"].native != "tst_info":
        raise Refusal("the timestamp token does not hold a TSTInfo")
    tst_der = encapsulated["content"].contents
    info = tsp.TSTInfo.load(tst_der, strict=True)
    _check_imprint(info, signature)
    signers = signed["signer_infos"]
    if len(signers) != 1:
        raise Refusal(f"the timestamp token has {len(signers)} signers; one expected")
    signer_info = signers[0]
    # The signed attributes as they were encoded, taken before any of their fields is read:
    # asn1crypto re-encodes a value once its fields have been read (filling in defaults),
    # which need not give back the bytes that were signed.
    signed_attributes = signer_info["signed_attrs"].dump()
    # the certificates' bytes, likewise taken before any field is read (their hash is signed)
    carried = [c.chosen.dump() for c in signed["certificates"] if c.name == "certificate"]
    tsa_certificate = x509.load_der_x509_certificate(
        _signer_certificate(signer_info["sid"], carried)
    )
    _check_signed_attributes(signer_info, tst_der, tsa_certificate)
    _check_signature(signed_attributes, signer_info, tsa_certificate)
    others = [x509.load_der_x509_certificate(der) for der in carried]
    gen_time: datetime = info["gen_time"].native
    path = _path(tsa_certificate, others, trusted_tsa)
    check_chain(path, Purpose.TIMESTAMPING)
    check_validity(path, gen_time, gen_time, "at the timestamp's time")
    accuracy = _accuracy(info)
    return StampedTime(lower=gen_time - accuracy, upper=gen_time + accuracy)


def _check_imprint(info: Any, signature: bytes) -> None:
    if info["version"].native != "v1":
        raise Refusal("the TSTInfo version is not 1")
    imprint = info["message_imprint"]
    algorithm = _digest(imprint["hash_algorithm"]["algorithm"].native, "the message imprint")
    if imprint["hashed_message"].native != _hash(algorithm, signature):
        raise Refusal("the timestamp's message imprint is not the hash of the envelope's signature")


def _signer_certificate(sid: Any, carried: list[bytes]) -> bytes:
    """The DER of the certificate the signer identifies itself by."""
    for der in carried:
        certificate = asn1_x509.Certificate.load(der)
        if sid.name == "issuer_and_serial_number":
            # the encoded names are compared: the signer copies its certificate's issuer,
            # and asn1crypto's RFC 5280 name matching costs milliseconds
            if (
                certificate.issuer.dump() == sid.chosen["issuer"].dump()
                and certificate.serial_number == sid.chosen["serial_number"].native
            ):
                return der
        elif certificate.key_identifier == sid.chosen.native:
            return der
    raise Refusal("the timestamp token does not carry its signing certificate")


def _check_signed_attributes(signer_info: Any, tst_der: bytes, tsa: x509.Certificate) -> None:
    attributes = signer_info["signed_attrs"]
    if not attributes:
        raise Refusal("the timestamp token's signer has no signed attributes")
    values = {}
    for attribute in attributes:
        kind = attribute["type"].native
        if kind in values or len(attribute["values"]) != 1:
            raise Refusal(f"the timestamp's signed attribute {kind} is repeated")
        values[kind] = attribute["values"][0]
    if "content_type" not in values or values["content_type"].native != "tst_info":
        raise Refusal("the timestamp's signed content-type attribute is not TSTInfo")
    digest = _digest(signer_info["digest_algorithm"]["algorithm"].native, "the timestamp signer")
    if "message_digest" not in values or values["message_digest"].native != _hash(digest, tst_der):
        raise Refusal("the timestamp's message-digest attribute does not match its TSTInfo")
    if "signing_certificate_v2" not in values:
        raise Refusal("the timestamp has no signing-certificate-v2 attribute")
    first = values["signing_certificate_v2"]["certs"][0]
    cert_digest = _digest(first["hash_algorithm"]["algorithm"].native, "signing-certificate-v2")
    if first["cert_hash"].native != _hash(cert_digest, tsa.public_bytes(Encoding.DER)):
        raise Refusal(
            "the timestamp's signing-certificate-v2 does not name its signing certificate"
        )


def _check_signature(signed_attributes: bytes, signer_info: Any, tsa: x509.Certificate) -> None:
    # the signature covers the signed attributes encoded as a SET, not as the [0] they are
    signed_bytes = b"\x31" + signed_attributes[1:]
    digest = _DIGESTS[signer_info["digest_algorithm"]["algorithm"].native]()
    kind = signer_info["signature_algorithm"].signature_algo
    signature = signer_info["signature"].native
    key = certificate_public_key(tsa)
    try:
        if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed_bytes, padding.PKCS1v15(), digest)
        elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            parameters = signer_info["signature_algorithm"]["parameters"]
            salt = parameters["salt_length"].native
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=salt)
            key.verify(signature, signed_bytes, pss, digest)
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed_bytes, ec.ECDSA(digest))
        else:
            raise Refusal(f"the timestamp's signature algorithm {kind} does not fit its key")
    except InvalidSignature:
        raise Refusal("the timestamp token's signature does not verify") from None


def _path(
    signer: x509.Certificate,
    carried: Sequence[x509.Certificate],
    trusted: Sequence[x509.Certificate],
) -> list[x509.Certificate]:
    """From the TSA's certificate up to a self-signed root, through the certificates the token
    carries and the uploaded ones (a token seldom carries its root); trusted if any
    certificate on the way is an uploaded ``tsa`` certificate."""
    path = [signer]
    candidates = [*trusted, *carried]
    # linked by names only: check_chain then verifies each signature once
    while path[-1].issuer != path[-1].subject and len(path) < _MAX_CHAIN:
        issuer = next(
            (c for c in candidates if c not in path and c.subject == path[-1].issuer), None
        )
        if issuer is None:
            break
        path.append(issuer)
    if trusted_certificate(path, trusted) is None:
        raise Refusal("the timestamp's certificate chain leads to no uploaded tsa certificate")
    return path


def _accuracy(info: Any) -> timedelta:
    accuracy = info["accuracy"]
    if accuracy.native is None:
        baseline = info["policy"].dotted == _BASELINE_POLICY
        return timedelta(seconds=1 if baseline else 0)
    fields = accuracy.native
    return timedelta(
        seconds=fields.get("seconds") or 0,
        milliseconds=fields.get("millis") or 0,
        microseconds=fields.get("micros") or 0,
    )


def _digest(name: str, what: str) -> hashes.HashAlgorithm:
    if name not in _DIGESTS:
        raise Refusal(f"{what} uses digest {name}; SHA-256, SHA-384 or SHA-512 expected")
    return _DIGESTS[name]()


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    return hashlib.new(algorithm.name, data).digest()
