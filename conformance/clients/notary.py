"""Notary Project signatures in the JWS envelope, produced and verified with ``cryptography``.

Enough of the Notary Project signature specification to sign an OCI manifest as notation does
(``notary.x509`` signing scheme, ES256, a leaf and root certificate in ``x5c``) and to verify
what a registry hands back.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SIGNATURE_TYPE = "application/vnd.cncf.notary.signature"
ENVELOPE_TYPE = "application/jose+json"
PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
THUMBPRINTS = "io.cncf.notary.x509chain.thumbprint#S256"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Signer:
    key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, x509.Certificate]  # leaf, root

    @classmethod
    def generate(cls, name: str) -> Signer:
        now = datetime.datetime.now(datetime.UTC)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} root")])
        root = (
            _builder(root_name, root_name, root_key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        leaf = (
            _builder(leaf_name, root_name, key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        return cls(key, (leaf, root))

    def thumbprints(self) -> list[str]:
        return [hashlib.sha256(_der(cert)).hexdigest() for cert in self.chain]

    def envelope(self, target: dict[str, Any]) -> bytes:
        """A JWS JSON envelope over the Notary payload for ``target`` (a descriptor)."""
        protected = {
            "alg": "ES256",
            "cty": PAYLOAD_TYPE,
            "crit": ["io.cncf.notary.signingScheme"],
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": datetime.datetime.now(datetime.UTC)
            .replace(microsecond=0)
            .isoformat(),
        }
        header = b64url(json.dumps(protected).encode())
        payload = b64url(json.dumps({"targetArtifact": target}).encode())
        der = self.key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        envelope = {
            "payload": payload,
            "protected": header,
            "header": {
                "x5c": [base64.b64encode(_der(cert)).decode() for cert in self.chain],
                "io.cncf.notary.signingAgent": "ocireg-conformance/1",
            },
            "signature": b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
        }
        return json.dumps(envelope).encode()


def verify(envelope: bytes) -> dict[str, Any]:
    """Check the envelope's signature and chain; return the signed target descriptor."""
    document = json.loads(envelope)
    protected = json.loads(unb64url(document["protected"]))
    if protected.get("cty") != PAYLOAD_TYPE or protected.get("alg") != "ES256":
        raise ValueError(f"unexpected protected header {protected}")
    if "io.cncf.notary.signingScheme" not in protected.get("crit", []):
        raise ValueError("the signing scheme is not critical")
    chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in document["header"]["x5c"]]
    for cert, issuer in itertools.pairwise(chain):
        cert.verify_directly_issued_by(issuer)
    raw = unb64url(document["signature"])
    signature = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    public = chain[0].public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    signed = f"{document['protected']}.{document['payload']}".encode()
    public.verify(signature, signed, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature
    target: dict[str, Any] = json.loads(unb64url(document["payload"]))["targetArtifact"]
    return target


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
