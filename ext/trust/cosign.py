"""cosign signatures: the simple-signing layer (``SIGNATURE_SPEC.md``) and the sigstore bundle
(cosign v3), each verified with the public keys an administrator uploaded.

A simple-signing layer's payload is the blob; its base64 signature is the layer annotation
``dev.cosignproject.cosign/signature``, over the payload bytes, made with SHA-256 whatever the
key (as cosign and zot load keys): ECDSA (ASN.1 DER signature), RSA PKCS#1 v1.5, or Ed25519.
The payload's ``critical.image.docker-manifest-digest`` must be the subject's digest (JSON keys
are matched without regard to case, as Go's decoder that cosign uses does).

A bundle is verified when it carries a DSSE envelope signed by an uploaded key: the signature is
over DSSE's pre-authentication encoding of the payload, and the payload is an in-toto statement
one of whose subjects is the signed manifest. A bundle with a certificate is keyless (Fulcio and
Rekor, which cannot be reached or trusted offline): not trusted, and the reason says so.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .material import CosignKey
from .verdict import Subject, Verdict

log = logging.getLogger("ocireg.trust")

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATIONS = (
    "dev.sigstore.cosign/certificate",
    "dev.cosignproject.cosign/certificate",
)
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
COSIGN_TYPE = "cosign container image signature"
KEYLESS = "keyless signature (Fulcio certificate, Rekor log): cannot be verified offline"


def verifies(key: CosignKey, signature: bytes, message: bytes) -> bool:
    try:
        public = key.key
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, message)
        else:  # pragma: no cover - material.py admits no other kind
            return False
    except InvalidSignature:
        return False
    return True


def _signer(keys: Sequence[CosignKey], signature: bytes, message: bytes) -> CosignKey | None:
    return next((key for key in keys if verifies(key, signature, message)), None)


def _b64(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _field(document: Any, name: str) -> Any:
    """``document[name]`` matching the key without regard to case (Go's JSON decoding)."""
    if not isinstance(document, dict):
        return None
    return next((value for key, value in document.items() if key.lower() == name), None)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def verify_simple_signing(
    payload: bytes, annotations: dict[str, str], subject: Subject, keys: Sequence[CosignKey]
) -> Verdict:
    """One simple-signing layer: ``payload`` is its blob, ``annotations`` its descriptor's."""
    signature = _b64(annotations.get(SIGNATURE_ANNOTATION))
    if signature is None:
        return Verdict.refused(f"the layer has no base64 {SIGNATURE_ANNOTATION} annotation")
    keyless = any(name in annotations for name in CERTIFICATE_ANNOTATIONS)
    if not keys:
        return Verdict.refused(KEYLESS if keyless else "no cosign public key is uploaded")
    signer = _signer(keys, signature, payload)
    if signer is None:
        reason = KEYLESS if keyless else "no uploaded public key verifies the signature"
        return Verdict.refused(reason)
    critical = _field(_json(payload), "critical")
    if _field(critical, "type") != COSIGN_TYPE:
        return Verdict.refused(f"the payload's critical.type is not {COSIGN_TYPE!r}")
    signed = _field(_field(critical, "image"), "docker-manifest-digest")
    if signed != subject.digest:
        return Verdict.refused(f"the payload signs {signed}, not {subject.digest}")
    return Verdict(trusted=True, author=signer.pem, details={"key": signer.digest})


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def verify_bundle(bundle: bytes, subject: Subject, keys: Sequence[CosignKey]) -> Verdict:
    document = _json(bundle)
    if not isinstance(document, dict):
        return Verdict.refused("the sigstore bundle is not a JSON object")
    material = document.get("verificationMaterial")
    if not isinstance(material, dict):
        return Verdict.refused("the sigstore bundle has no verificationMaterial")
    if "publicKey" not in material:
        return Verdict.refused(KEYLESS)
    envelope = document.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        return Verdict.refused("only DSSE bundles name the image they sign; this one has none")
    payload, payload_type = _b64(envelope.get("payload")), envelope.get("payloadType")
    if payload is None or not isinstance(payload_type, str):
        return Verdict.refused("the DSSE envelope has no base64 payload or no payloadType")
    if not keys:
        return Verdict.refused("no cosign public key is uploaded")
    message = pae(payload_type, payload)
    signatures = envelope.get("signatures")
    signer = None
    for entry in signatures if isinstance(signatures, list) else []:
        signature = _b64(entry.get("sig")) if isinstance(entry, dict) else None
        signer = signer or (_signer(keys, signature, message) if signature else None)
    if signer is None:
        return Verdict.refused("no uploaded public key verifies the DSSE signature")
    algorithm, _, encoded = subject.digest.partition(":")
    subjects = _field(_json(payload), "subject")
    named = [_field(s, "digest") for s in subjects] if isinstance(subjects, list) else []
    if not any(isinstance(d, dict) and d.get(algorithm) == encoded for d in named):
        return Verdict.refused(f"the statement's subjects do not include {subject.digest}")
    return Verdict(trusted=True, author=signer.pem, details={"key": signer.digest})


def verify_layer(
    media_type: str,
    data: bytes,
    annotations: dict[str, str],
    subject: Subject,
    keys: Sequence[CosignKey],
) -> Verdict:
    if media_type == SIMPLE_SIGNING:
        return verify_simple_signing(data, annotations, subject, keys)
    if media_type == BUNDLE:
        return verify_bundle(data, subject, keys)
    return Verdict.refused(f"{media_type} is not a cosign signature layer")
