"""Malformed envelopes are refused with a reason that names the fault, never raised: not for
garbage, not for any truncation of a good envelope, not for any byte of it flipped."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import cbor2
import pytest

from ocireg.ext.trust.notation import verify_notation
from ocireg.ext.trust.verdict import TrustStore, Verdict

from . import pki
from .pki import NOW, Issued
from .signers import SUBJECT, sign_cose, sign_jws

JWS, COSE = "application/jose+json", "application/cose"


@pytest.fixture(scope="module")
def chain() -> list[Issued]:
    root = pki.root()
    return [pki.leaf(root), root]


def verify(envelope: bytes, envelope_type: str, chain: list[Issued]) -> Verdict:
    return verify_notation(envelope, envelope_type, SUBJECT, TrustStore(ca=(chain[-1].cert,)), NOW)


def refused(verdict: Verdict, reason: str) -> None:
    assert not verdict.trusted
    assert reason in verdict.reason, verdict.reason


def jws_document(chain: list[Issued]) -> dict[str, Any]:
    return dict(json.loads(sign_jws(chain)))


def test_an_unknown_envelope_type_is_refused(chain: list[Issued]) -> None:
    refused(
        verify(sign_jws(chain), "application/json", chain), "unsupported signature envelope type"
    )


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        (b"\xff\xfe not json", "the JWS envelope is not acceptable JSON: not UTF-8"),
        (b"[1, 2]", "the JWS envelope is not a JSON object"),
        (b'{"payload": "e30", "payload": "e30"}', "duplicate key 'payload'"),
    ],
)
def test_a_jws_that_is_not_a_json_object_is_refused(
    chain: list[Issued], envelope: bytes, reason: str
) -> None:
    refused(verify(envelope, JWS, chain), reason)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(signatures=[]), "only flattened JSON"),
        (lambda d: d.update(extra=1), "fields the specification does not allow: ['extra']"),
        (lambda d: d.pop("header"), "unprotected header is missing"),
        (lambda d: d["header"].pop("x5c"), "no x5c certificate chain"),
        (
            lambda d: d["header"].update(x5c=["%%%"]),
            "x5c holds a value that is not standard base64",
        ),
        (
            lambda d: d["header"].update(x5c=["AAAA"]),
            "certificate 0 of the chain is not a valid DER certificate",
        ),
        (lambda d: d["header"].update(alg="ES256"), "appears both protected and unprotected"),
        (lambda d: d.update(signature=d["signature"] + "="), "signature is not unpadded base64url"),
        (lambda d: d.update(protected="eyJhbGciOiJFUzI1NiJ9"), "no `crit` list of strings"),
        (
            lambda d: d["header"].update({"io.cncf.notary.timestampSignature": 7}),
            "timestampSignature holds a value that is not a base64 string",
        ),
    ],
    ids=[
        "general-serialization",
        "extra-member",
        "no-header",
        "no-x5c",
        "x5c-not-base64",
        "x5c-not-der",
        "header-twice",
        "padded-signature",
        "no-crit",
        "timestamp-not-string",
    ],
)
def test_a_malformed_jws_is_refused(chain: list[Issued], change: Any, reason: str) -> None:
    document = jws_document(chain)
    change(document)

    refused(verify(json.dumps(document).encode(), JWS, chain), reason)


def test_a_jws_with_crit_naming_a_registered_header_is_refused(chain: list[Issued]) -> None:
    document = jws_document(chain)
    protected = json.loads(base64.urlsafe_b64decode(document["protected"] + "=="))
    protected["crit"].append("alg")
    document["protected"] = (
        base64.urlsafe_b64encode(json.dumps(protected).encode()).decode().rstrip("=")
    )

    refused(
        verify(json.dumps(document).encode(), JWS, chain), "`crit` lists registered JWS headers"
    )


def cose_parts(chain: list[Issued]) -> list[Any]:
    protected, unprotected, body, signature = cbor2.loads(sign_cose(chain)).value
    return [protected, dict(unprotected), body, signature]


def protected_with(parts: list[Any], **changes: Any) -> list[Any]:
    header = dict(cbor2.loads(parts[0]))
    header.update({int(k.removeprefix("label")): v for k, v in changes.items()})
    parts[0] = cbor2.dumps(header)
    return parts


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: b"\xff\x00", "the COSE envelope is not CBOR"),
        (lambda p: cbor2.dumps(p), "not a tagged COSE_Sign1"),
        (lambda p: cbor2.dumps(cbor2.CBORTag(98, p)), "not a tagged COSE_Sign1"),
        (lambda p: cbor2.dumps(cbor2.CBORTag(18, p[:3])), "not an array of four items"),
        (lambda p: cbor2.dumps(cbor2.CBORTag(18, [p[0], p[1], None, p[3]])), "no attached payload"),
        (lambda p: cbor2.dumps(cbor2.CBORTag(18, [b"", *p[1:]])), "has no protected header"),
        (
            lambda p: cbor2.dumps(cbor2.CBORTag(18, [p[0], {}, *p[2:]])),
            "no x5chain certificate chain",
        ),
        (
            lambda p: cbor2.dumps(cbor2.CBORTag(18, protected_with(p, label1=-257))),
            "COSE alg -257 is not one the Notary Project allows",
        ),
        (
            lambda p: cbor2.dumps(
                cbor2.CBORTag(18, protected_with(p, label2=[1, "io.cncf.notary.signingScheme"]))
            ),
            "crit lists COSE header label 1",
        ),
        (
            lambda p: cbor2.dumps(
                cbor2.CBORTag(18, protected_with(p, label2=[99, "io.cncf.notary.signingScheme"]))
            ),
            "unknown critical header 99",
        ),
    ],
    ids=[
        "not-cbor",
        "untagged",
        "cose-sign-tag",
        "three-items",
        "detached-payload",
        "empty-protected",
        "no-x5chain",
        "rs256",
        "crit-registered-label",
        "crit-unknown-label",
    ],
)
def test_a_malformed_cose_is_refused(chain: list[Issued], make: Any, reason: str) -> None:
    refused(verify(make(cose_parts(chain)), COSE, chain), reason)


# cryptography loads a certificate with these faults and warns; ocireg does as cryptography does
@pytest.mark.filterwarnings("ignore:Attribute's length must be")
@pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")
@pytest.mark.parametrize(
    ("sign", "envelope_type"), [(sign_jws, JWS), (sign_cose, COSE)], ids=["jws", "cose"]
)
def test_no_truncation_or_flipped_byte_of_an_envelope_raises_or_is_trusted(
    chain: list[Issued], sign: Any, envelope_type: str
) -> None:
    envelope = sign(chain)
    assert verify(envelope, envelope_type, chain).trusted
    rng = random.Random(27775)
    damaged = [envelope[:cut] for cut in range(0, len(envelope), 7)]
    for position in rng.sample(range(len(envelope)), 400):
        flipped = bytearray(envelope)
        flipped[position] ^= 1 << rng.randrange(8)
        damaged.append(bytes(flipped))

    for variant in damaged:
        verdict = verify(variant, envelope_type, chain)
        # a flipped bit in an unsigned, unchecked place (the signing agent, a JSON space) may
        # leave the envelope intact; anything refused must be refused for a stated reason
        assert verdict.trusted or verdict.reason, variant
        assert "internal error" not in verdict.reason, (variant, verdict.reason)


def test_a_cose_x5chain_may_be_protected(chain: list[Issued]) -> None:
    assert verify(sign_cose(chain, x5chain_protected=True), COSE, chain).trusted


def test_a_cose_x5chain_of_one_certificate_may_be_a_bare_byte_string() -> None:
    alone = pki.certificate("wabbit signer", ca=False, eku=pki.CODE_SIGNING)
    protected, unprotected, body, signature = cbor2.loads(sign_cose([alone])).value
    bare = {**unprotected, 33: alone.der}  # RFC 9360: one certificate as a bstr
    envelope = cbor2.dumps(cbor2.CBORTag(18, [protected, bare, body, signature]))

    assert verify(envelope, COSE, [alone]).trusted


def test_a_cose_x5chain_both_protected_and_unprotected_is_refused(chain: list[Issued]) -> None:
    protected, unprotected, body, signature = cbor2.loads(
        sign_cose(chain, x5chain_protected=True)
    ).value
    twice = {**unprotected, 33: [c.der for c in chain]}
    envelope = cbor2.dumps(cbor2.CBORTag(18, [protected, twice, body, signature]))

    refused(verify(envelope, COSE, chain), "x5chain appears both protected and unprotected")
