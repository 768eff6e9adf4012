"""Certificates for notation tests, made with ``cryptography`` alone: roots, intermediates,
code-signing leaves and timestamping leaves, each with the extensions a test asks for."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
CODE_SIGNING = (ExtendedKeyUsageOID.CODE_SIGNING,)
_CURVES = {"ec256": ec.SECP256R1, "ec384": ec.SECP384R1, "ec521": ec.SECP521R1}


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@functools.cache
def _key(kind: str, index: int) -> PrivateKey:
    """Keys are slow to make (RSA 4096 above all), so each (kind, index) is made once."""
    if kind in _CURVES:
        return ec.generate_private_key(_CURVES[kind]())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind.removeprefix("rsa")))


_counter = iter(range(1_000_000))


def new_key(kind: str = "ec256") -> PrivateKey:
    return _key(kind, next(_counter))


def name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Wabbit Networks"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _usage(
    *, digital_signature: bool = False, cert_sign: bool = False, **more: bool
) -> x509.KeyUsage:
    flags = {
        "digital_signature": digital_signature,
        "content_commitment": False,
        "key_encipherment": False,
        "data_encipherment": False,
        "key_agreement": False,
        "key_cert_sign": cert_sign,
        "crl_sign": cert_sign,
        "encipher_only": False,
        "decipher_only": False,
    }
    flags.update(more)
    return x509.KeyUsage(**flags)


def certificate(
    common_name: str,
    issuer: Issued | None = None,
    *,
    ca: bool,
    key_kind: str = "ec256",
    not_before: datetime = NOW - DAY,
    not_after: datetime = NOW + 30 * DAY,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
    eku_critical: bool = False,
    usage: x509.KeyUsage | None = None,
    usage_critical: bool = True,
    basic_constraints: bool = True,
    path_length: int | None = None,
    signature_hash: hashes.HashAlgorithm | None = None,
    key: Any = None,
) -> Issued:
    """A certificate signed by ``issuer`` (self-signed without one), with a CA's or a leaf's
    extensions; each keyword departs from what the Notary Project requires, for one test
    (``key``: this private key instead of a new one of ``key_kind``)."""
    key = key or new_key(key_kind)
    subject = name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
    default_usage = _usage(cert_sign=True) if ca else _usage(digital_signature=True)
    builder = builder.add_extension(usage or default_usage, critical=usage_critical)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=eku_critical)
    signer = issuer.key if issuer else key
    cert = builder.sign(signer, signature_hash or hashes.SHA256())
    return Issued(cert, key)


def root(common_name: str = "Wabbit Root CA", **options: object) -> Issued:
    return certificate(common_name, ca=True, **options)


def leaf(issuer: Issued, common_name: str = "wabbit signer", **options: object) -> Issued:
    options.setdefault("eku", CODE_SIGNING)
    return certificate(common_name, issuer, ca=False, **options)


def tsa_leaf(issuer: Issued, common_name: str = "Wabbit TSA") -> Issued:
    return certificate(
        common_name,
        issuer,
        ca=False,
        eku=(ExtendedKeyUsageOID.TIME_STAMPING,),
        eku_critical=True,
        not_before=NOW - 400 * DAY,
        not_after=NOW + 400 * DAY,
    )


def usage(**flags: bool) -> x509.KeyUsage:
    return _usage(**flags)


def dsa_root(common_name: str = "Wabbit DSA Root") -> Issued:
    """A root CA on a DSA key, otherwise as the Notary Project requires: what notation refuses.
    cryptography 51 deprecated DSA and warns when its module is read or a DSA key signs; the
    tests that need one are about refusing it, so the warning is expected here alone (the
    suite turns warnings into errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        from cryptography.hazmat.primitives.asymmetric import dsa

        return certificate(common_name, ca=True, key=dsa.generate_private_key(key_size=2048))
