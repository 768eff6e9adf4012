"""Certificate chains as the Notary Project requires them: the signature specification's
certificate requirements (for code signing and for timestamping), an ordered chain that ends in
a root, and trust in a chain through a certificate an administrator uploaded.

Only basic constraints, key usage and extended key usage are honoured; the specification says
every other extension fails open.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from ocireg.publickeys import certificate_public_key

from .envelope import Refusal

_Extension = TypeVar("_Extension", bound=x509.ExtensionType)


class Purpose(Enum):
    CODE_SIGNING = "code signing"
    TIMESTAMPING = "timestamping"


_FORBIDDEN_LEAF_EKU = {
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
}
_FORBIDDEN_LEAF_USAGES = (
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def load_chain(ders: Sequence[bytes]) -> list[x509.Certificate]:
    certificates = []
    for position, der in enumerate(ders):
        try:
            certificates.append(_load(der))
        except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion):
            raise Refusal(
                f"certificate {position} of the chain is not a valid DER certificate"
            ) from None
    return certificates


@functools.lru_cache(maxsize=1024)  # the same certificates come with many signatures
def _load(der: bytes) -> x509.Certificate:
    certificate = x509.load_der_x509_certificate(der)
    # cryptography decodes fields on first use: decode now what the checks read, so that a
    # malformed certificate is refused here and not half-way through a check
    _ = (certificate.subject, certificate.issuer, certificate.extensions)
    _ = (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
    certificate_public_key(certificate)
    return certificate


def check_chain(chain: Sequence[x509.Certificate], purpose: Purpose) -> None:
    """An ordered chain, leaf first, each certificate issued and signed by the next, ending in
    a self-signed root, every certificate meeting the requirements of its place in it."""
    refusal = _chain_refusal(tuple(chain), purpose)
    if refusal is not None:
        raise Refusal(refusal)


# The checks above depend on the certificates' bytes alone (not on the time, nor on what is
# uploaded), and one signing certificate usually signs many images: a re-evaluation after an
# upload checks each distinct chain once, not once per signature (certificates hash and
# compare by their DER encoding).
@functools.lru_cache(maxsize=1024)
def _chain_refusal(chain: tuple[x509.Certificate, ...], purpose: Purpose) -> str | None:
    try:
        _check_chain(chain, purpose)
    except Refusal as refusal:
        return str(refusal)
    return None


def _check_chain(chain: Sequence[x509.Certificate], purpose: Purpose) -> None:
    for position, certificate in enumerate(chain):  # before a signature is verified with one
        _no_sha1(certificate, position)
        _known_key(certificate, position)
    for position, certificate in enumerate(chain):
        issuer = chain[position + 1] if position + 1 < len(chain) else certificate
        if not is_issued_by(certificate, issuer):
            what = (
                "is not signed by the next one"
                if issuer is not certificate
                else ("is the last one but is not a self-signed root")
            )
            raise Refusal(f"certificate {position} of the chain ({_name(certificate)}) {what}")
    check_leaf(chain[0], purpose)
    # a chain of one root: the root meets the leaf's requirements, not a CA's
    for depth, certificate in enumerate(chain[1:]):
        _check_ca(certificate, purpose, intermediates_below=depth)


# The keys a certificate of a chain may have: what notation's verifier (Go's crypto/x509) checks
# signatures of. Go dropped DSA signature verification (Go 1.16), so notation, and zot with it,
# refuses a chain through a DSA key; cryptography would still verify one (with a deprecation
# warning), which would trust what they refuse.
_KNOWN_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)


def _known_key(certificate: x509.Certificate, position: int) -> None:
    key = certificate_public_key(certificate)
    if not isinstance(key, _KNOWN_KEYS):
        kind = type(key).__name__.removesuffix("PublicKey")
        raise Refusal(
            f"certificate {position} of the chain ({_name(certificate)}) has a {kind} key, "
            "which notation does not verify"
        )


def is_issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    if certificate.issuer != issuer.subject:
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def check_leaf(leaf: x509.Certificate, purpose: Purpose) -> None:
    constraints = _extension(leaf, x509.BasicConstraints)
    if constraints is not None and constraints.value.ca:
        raise Refusal(f"the {purpose.value} certificate ({_name(leaf)}) is a CA certificate")
    usage = _key_usage(leaf, purpose)
    if not usage.digital_signature:
        raise Refusal(f"the {purpose.value} certificate's key usage lacks digitalSignature")
    set_bits = [bit for bit in _FORBIDDEN_LEAF_USAGES if getattr(usage, bit)]
    if usage.key_agreement and (usage.encipher_only or usage.decipher_only):
        set_bits.append("encipherOnly/decipherOnly")
    if set_bits:
        raise Refusal(f"the {purpose.value} certificate's key usage must not have {set_bits}")
    _check_extended_key_usage(leaf, purpose)
    check_key_length(leaf)


def _check_extended_key_usage(leaf: x509.Certificate, purpose: Purpose) -> None:
    extension = _extension(leaf, x509.ExtendedKeyUsage)
    if purpose is Purpose.TIMESTAMPING:
        if extension is None or not extension.critical:
            raise Refusal("the timestamping certificate has no critical extended key usage")
        if list(extension.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
            raise Refusal(
                "the timestamping certificate's extended key usage is not timeStamping only"
            )
        return
    if extension is None:
        return
    forbidden = [name for oid, name in _FORBIDDEN_LEAF_EKU.items() if oid in extension.value]
    if forbidden:
        raise Refusal(f"the signing certificate's extended key usage must not have {forbidden}")


def _check_ca(certificate: x509.Certificate, purpose: Purpose, intermediates_below: int) -> None:
    constraints = _extension(certificate, x509.BasicConstraints)
    if constraints is None or not constraints.critical or not constraints.value.ca:
        raise Refusal(
            f"CA certificate {_name(certificate)} lacks critical basic constraints with cA true"
        )
    path_length = constraints.value.path_length
    if path_length is not None and intermediates_below > path_length:
        raise Refusal(
            f"CA certificate {_name(certificate)} allows {path_length} intermediates below it"
        )
    if not _key_usage(certificate, purpose).key_cert_sign:
        raise Refusal(f"CA certificate {_name(certificate)}'s key usage lacks keyCertSign")
    check_key_length(certificate)


def check_key_length(certificate: x509.Certificate) -> None:
    key = certificate_public_key(certificate)
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise Refusal(f"certificate {_name(certificate)} has an RSA key under 2048 bits")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.key_size < 256:
        raise Refusal(f"certificate {_name(certificate)} has an EC key under 256 bits")


def _key_usage(certificate: x509.Certificate, purpose: Purpose) -> x509.KeyUsage:
    extension = _extension(certificate, x509.KeyUsage)
    if extension is None:
        raise Refusal(f"certificate {_name(certificate)} has no key usage extension")
    # critical is a MUST for code signing and a SHOULD for timestamping
    if purpose is Purpose.CODE_SIGNING and not extension.critical:
        raise Refusal(f"certificate {_name(certificate)}'s key usage is not critical")
    return extension.value


def _extension(
    certificate: x509.Certificate, kind: type[_Extension]
) -> x509.Extension[_Extension] | None:
    try:
        return certificate.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None
    except ValueError:  # a duplicate or undecodable extension
        raise Refusal(f"certificate {_name(certificate)} has malformed extensions") from None


def _no_sha1(certificate: x509.Certificate, position: int) -> None:
    try:
        algorithm = certificate.signature_hash_algorithm
    except Exception:  # an algorithm cryptography does not know: judged when verifying
        return
    if isinstance(algorithm, hashes.SHA1 | hashes.MD5):
        raise Refusal(f"certificate {position} of the chain is signed with {algorithm.name}")


def trusted_certificate(
    chain: Sequence[x509.Certificate], trusted: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    """The uploaded certificate that the chain contains, if any; as notation does, the chain is
    trusted through any of its certificates being uploaded, not the root alone."""
    for anchor in trusted:
        for certificate in chain:
            if anchor == certificate:
                return anchor
    return None


def check_validity(
    chain: Sequence[x509.Certificate], start: datetime, end: datetime, when: str
) -> None:
    """Every certificate valid through [start, end] (one instant when they are equal); no
    nesting of validity periods is enforced, as the specification says."""
    for certificate in chain:
        if start < certificate.not_valid_before_utc:
            raise Refusal(
                f"certificate {_name(certificate)} is not yet valid {when} "
                f"(valid from {certificate.not_valid_before_utc.isoformat()})"
            )
        if end > certificate.not_valid_after_utc:
            raise Refusal(
                f"certificate {_name(certificate)} has expired {when} "
                f"(valid until {certificate.not_valid_after_utc.isoformat()})"
            )


def _name(certificate: x509.Certificate) -> str:
    return repr(certificate.subject.rfc4514_string())
