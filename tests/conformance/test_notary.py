"""The suite's Notary Project JWS envelopes verify, and a tampered one does not."""

from __future__ import annotations

import json

import pytest
from cryptography.exceptions import InvalidSignature

from ocireg.conformance.clients.notary import Signer, b64url, unb64url, verify

TARGET = {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + "a" * 64,
    "size": 7,
}


def test_envelope_round_trip() -> None:
    signer = Signer.generate("unit.example")
    envelope = json.loads(signer.envelope(TARGET))
    assert (
        json.loads(unb64url(envelope["protected"]))["io.cncf.notary.signingScheme"] == "notary.x509"
    )
    assert len(envelope["header"]["x5c"]) == 2
    assert verify(json.dumps(envelope).encode()) == TARGET


def test_tampered_payload_fails() -> None:
    envelope = json.loads(Signer.generate("unit.example").envelope(TARGET))
    envelope["payload"] = b64url(json.dumps({"targetArtifact": {**TARGET, "size": 8}}).encode())
    with pytest.raises(InvalidSignature):
        verify(json.dumps(envelope).encode())


def test_chain_from_another_root_fails() -> None:
    first, second = Signer.generate("one.example"), Signer.generate("two.example")
    envelope = json.loads(first.envelope(TARGET))
    envelope["header"]["x5c"][1] = json.loads(second.envelope(TARGET))["header"]["x5c"][1]
    with pytest.raises((InvalidSignature, ValueError)):
        verify(json.dumps(envelope).encode())
