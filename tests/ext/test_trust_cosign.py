"""trust's cosign verifier and key parsing on their own: the cases HTTP tests do not reach."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ocireg.ext.trust import cosign
from ocireg.ext.trust.material import MaterialError, certificates, cosign_key
from ocireg.ext.trust.verdict import Subject
from tests.certs import dsa_public_pem, make_ca
from tests.ext.cosigning import Signer, bundle, payload
from tests.oci import OCI_MANIFEST, sha256

SUBJECT = Subject(sha256(b"image"), OCI_MANIFEST, 5)
TAMPERED = base64.b64encode(b'{"subject": []}').decode()


def _pem(key: object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_p384_keys_are_accepted_and_dsa_keys_refused() -> None:
    assert cosign_key(_pem(ec.generate_private_key(ec.SECP384R1()))).kind == "ecdsa-secp384r1"
    with pytest.raises(MaterialError, match="DSAPublicKey keys are not supported"):
        cosign_key(dsa_public_pem())


def test_a_der_certificate_and_a_pem_bundle_are_read(tmp_path: object) -> None:
    first = make_ca(tmp_path, "one")  # type: ignore[arg-type]
    assert certificates(first.der)[0].subject == first.cert.subject
    both = (first.pem + first.pem).encode()
    assert len(certificates(both)) == 2
    with pytest.raises(MaterialError, match=r"not an X\.509 certificate"):
        certificates(b"\x30\x03\x02\x01\x01")


def test_the_payload_type_must_be_cosigns() -> None:
    signer = Signer.ecdsa()
    document = json.loads(payload(SUBJECT.digest))
    document["critical"]["type"] = "atomic container signature"
    data = json.dumps(document).encode()
    key = cosign_key(signer.public_pem())
    annotations = {cosign.SIGNATURE_ANNOTATION: base64.b64encode(signer.sign(data)).decode()}
    verdict = cosign.verify_simple_signing(data, annotations, SUBJECT, [key])
    assert not verdict.trusted and "critical.type" in verdict.reason


def test_a_missing_or_broken_signature_annotation_is_said() -> None:
    key = cosign_key(Signer.ecdsa().public_pem())
    data = payload(SUBJECT.digest)
    for layer in ({}, {cosign.SIGNATURE_ANNOTATION: "not base64!"}):
        verdict = cosign.verify_simple_signing(data, layer, SUBJECT, [key])
        assert verdict.reason.startswith("the layer has no base64")


def test_a_keyless_simple_signing_layer_says_keyless() -> None:
    data = payload(SUBJECT.digest)
    annotations = {
        cosign.SIGNATURE_ANNOTATION: base64.b64encode(b"sig").decode(),
        "dev.sigstore.cosign/certificate": "-----BEGIN CERTIFICATE-----",
    }
    verdict = cosign.verify_simple_signing(data, annotations, SUBJECT, [])
    assert verdict.reason == cosign.KEYLESS


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda b: b.pop("dsseEnvelope"), "only DSSE bundles"),
        (lambda b: b.pop("verificationMaterial"), "no verificationMaterial"),
        (lambda b: b["dsseEnvelope"].update(payload="%%"), "no base64 payload"),
        (
            lambda b: b["dsseEnvelope"].update(
                payload=base64.b64encode(b'{"subject": 1}').decode()
            ),
            "no uploaded public key verifies",
        ),
    ],
)
def test_broken_bundles_are_untrusted_with_a_reason(change: object, reason: str) -> None:
    signer = Signer.ecdsa()
    document = json.loads(bundle(SUBJECT.digest, signer))
    change(document)  # type: ignore[operator]
    verdict = cosign.verify_bundle(
        json.dumps(document).encode(), SUBJECT, [cosign_key(signer.public_pem())]
    )
    assert not verdict.trusted and reason in verdict.reason


def test_a_statement_whose_subject_is_no_list_names_nothing() -> None:
    signer = Signer.ecdsa()
    body = json.dumps({"subject": {"digest": {"sha256": SUBJECT.digest[7:]}}}).encode()
    kind = "application/vnd.in-toto+json"
    document = {
        "verificationMaterial": {"publicKey": {}},
        "dsseEnvelope": {
            "payload": base64.b64encode(body).decode(),
            "payloadType": kind,
            "signatures": [{"sig": base64.b64encode(signer.sign(cosign.pae(kind, body))).decode()}],
        },
    }
    verdict = cosign.verify_bundle(
        json.dumps(document).encode(), SUBJECT, [cosign_key(signer.public_pem())]
    )
    assert verdict.reason == f"the statement's subjects do not include {SUBJECT.digest}"
