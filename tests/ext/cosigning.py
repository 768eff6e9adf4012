"""cosign signatures made as cosign makes them, with ``cryptography`` only (independent of the
registry's verifier): the simple-signing payload and its signature annotation exactly as
``SIGNATURE_SPEC.md`` says, pushed under the legacy ``sha256-<hex>.sig`` tag or as a referrer,
and cosign v3's sigstore bundle (a DSSE envelope over an in-toto statement)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.oci import (
    EMPTY,
    OCI_CONFIG,
    OCI_MANIFEST,
    canonical,
    descriptor,
    push_blob,
    put_manifest,
    sha256,
)

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class Signer:
    private: PrivateKey

    @classmethod
    def ecdsa(cls) -> Signer:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def rsa(cls) -> Signer:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ed25519(cls) -> Signer:
        return cls(ed25519.Ed25519PrivateKey.generate())

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> bytes:
        key = self.private
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(hashes.SHA256()))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return key.sign(message)


def payload(digest: str, reference: str = "registry.local/app") -> bytes:
    """The simple-signing payload of SIGNATURE_SPEC.md for the manifest ``digest``."""
    document = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    return json.dumps(document).encode()


def signature_manifest(
    client: httpx.Client,
    repo: str,
    signed_payload: bytes,
    signature: bytes,
    subject: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Push the payload blob and return cosign's manifest around it: the legacy form (an image
    config) without ``subject``, the referrers form (artifactType, empty config) with one."""
    push_blob(client, repo, signed_payload)
    layer = descriptor(
        SIMPLE_SIGNING,
        signed_payload,
        annotations={SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
    )
    if subject is None:
        config = json.dumps({"architecture": "", "os": "", "config": {}, "rootfs": {
            "type": "layers", "diff_ids": [f"sha256:{'0' * 64}"]}}).encode()  # fmt: skip
        push_blob(client, repo, config)
        return {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config), "layers": [layer]}  # fmt: skip
    push_blob(client, repo, b"{}")
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": COSIGN_ARTIFACT,
            "config": EMPTY, "layers": [layer], "subject": subject}  # fmt: skip


def push_legacy(
    client: httpx.Client, repo: str, subject: str, signer: Signer, signed: str | None = None
) -> str:
    """Sign ``signed`` (default: the subject) and push it under ``subject``'s ``.sig`` tag."""
    data = payload(signed or subject)
    manifest = signature_manifest(client, repo, data, signer.sign(data))
    tag = subject.replace(":", "-") + ".sig"
    return put_manifest(client, repo, tag, manifest).headers["Docker-Content-Digest"]


def push_referrer(
    client: httpx.Client,
    repo: str,
    subject: dict[str, Any],
    signer: Signer,
    signed_payload: bytes | None = None,
    signature: bytes | None = None,
) -> str:
    data = signed_payload if signed_payload is not None else payload(subject["digest"])
    signature = signature if signature is not None else signer.sign(data)
    manifest = signature_manifest(client, repo, data, signature, subject)
    return put_manifest(client, repo, sha256(canonical(manifest)), manifest).headers[
        "Docker-Content-Digest"
    ]


def pae(payload_type: str, body: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def bundle(subject_digest: str, signer: Signer | None, keyless: bool = False) -> bytes:
    """cosign v3's bundle for an image: a DSSE envelope over an in-toto statement."""
    algorithm, _, encoded = subject_digest.partition(":")
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "registry.local/app", "digest": {algorithm: encoded}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }
    body = json.dumps(statement).encode()
    kind = "application/vnd.in-toto+json"
    signature = signer.sign(pae(kind, body)) if signer else b"\0" * 64
    material: dict[str, Any] = (
        {"certificate": {"rawBytes": base64.b64encode(b"not checked").decode()}, "tlogEntries": []}
        if keyless
        else {"publicKey": {"hint": "key"}}
    )
    document = {
        "mediaType": BUNDLE,
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": base64.b64encode(body).decode(),
            "payloadType": kind,
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        },
    }
    return json.dumps(document).encode()


def push_bundle(client: httpx.Client, repo: str, subject: dict[str, Any], data: bytes) -> str:
    push_blob(client, repo, data)
    push_blob(client, repo, b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE,
        "config": EMPTY,
        "layers": [descriptor(BUNDLE, data)],
        "subject": subject,
    }
    return put_manifest(client, repo, sha256(canonical(manifest)), manifest).headers[
        "Docker-Content-Digest"
    ]
