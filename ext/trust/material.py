"""Uploaded trust material, parsed or refused with the reason a 400 gives.

A cosign public key is a PEM ``PUBLIC KEY`` (what ``cosign generate-key-pair`` writes as
``cosign.pub``): ECDSA on P-256, P-384 or P-521, RSA of at least 2048 bits, or Ed25519. A notation
certificate is PEM (one or more ``CERTIFICATE`` blocks, as notation's truststore files are) or
one DER certificate. Each is known by the sha256 of its DER form, so uploading one twice keeps one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ocireg.publickeys import load_pem_public_key

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
MIN_RSA_BITS = 2048
TRUSTSTORE_TYPES = ("ca", "signingAuthority", "tsa")


class MaterialError(ValueError):
    """The upload is no key or certificate we can use; the message says why."""


@dataclass(frozen=True)
class CosignKey:
    digest: str
    key: PublicKey
    pem: str  # the key as zot shows it in Author

    @property
    def kind(self) -> str:
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            return f"ecdsa-{self.key.curve.name}"
        if isinstance(self.key, rsa.RSAPublicKey):
            return f"rsa-{self.key.key_size}"
        return "ed25519"


def digest_of(der: bytes) -> str:
    return "sha256:" + hashlib.sha256(der).hexdigest()


def cosign_key(body: bytes) -> CosignKey:
    """The public key in ``body``, or MaterialError."""
    try:
        key = load_pem_public_key(body.strip())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise MaterialError(f"not a PEM public key ({_first_line(exc)})") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, CURVES):
            raise MaterialError(f"ECDSA curve {key.curve.name} is not supported (P-256/384/521)")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise MaterialError(f"an RSA key of {key.key_size} bits is too weak")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise MaterialError(f"{type(key).__name__} keys are not supported")
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return CosignKey(digest_of(der), key, pem)


def certificates(body: bytes) -> list[x509.Certificate]:
    """The certificates in ``body`` (PEM, one or more; or one DER), or MaterialError."""
    stripped = body.strip()
    try:
        if stripped.startswith(b"-----BEGIN"):
            found = x509.load_pem_x509_certificates(stripped)
        else:
            found = [x509.load_der_x509_certificate(stripped)]
    except ValueError as exc:
        raise MaterialError(f"not an X.509 certificate: {_first_line(exc)}") from None
    if not found:
        raise MaterialError("no certificate in the body")
    return found


def certificate_digest(certificate: x509.Certificate) -> str:
    return digest_of(certificate.public_bytes(serialization.Encoding.DER))


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def load_certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def load_key(pem: str) -> CosignKey:
    return cosign_key(pem.encode())


def _first_line(exc: BaseException) -> str:
    """cryptography's message without its FAQ link."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    return text.split(". See https://")[0]
