"""verify_notation on envelopes made by jwcrypto (JWS) and pycose (COSE): what is trusted, and
one test for each way a signature must be refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from ocireg.ext.trust.notation import verify_notation
from ocireg.ext.trust.verdict import TrustStore, Verdict

from . import pki
from .pki import DAY, NOW, Issued
from .signers import (
    EXPIRY,
    SIGNING_AUTHORITY,
    SUBJECT,
    X509,
    payload,
    sign_cose,
    sign_jws,
    sign_jws_by_hand,
)

JWS, COSE = "application/jose+json", "application/cose"
SIGNERS: dict[str, Callable[..., bytes]] = {JWS: sign_jws, COSE: sign_cose}
AUTHOR = "CN=wabbit signer,O=Wabbit Networks,ST=WA,C=US"


class Pki:
    """root -> intermediate -> code-signing leaf, made once per test module."""

    def __init__(self) -> None:
        self.root = pki.root()
        self.intermediate = pki.certificate("Wabbit Intermediate CA", self.root, ca=True)
        self.leaf = pki.leaf(self.intermediate)

    @property
    def chain(self) -> list[Issued]:
        return [self.leaf, self.intermediate, self.root]


@pytest.fixture(scope="module")
def ca() -> Pki:
    return Pki()


@pytest.fixture(params=[JWS, COSE], ids=["jws", "cose"])
def envelope_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def verify(
    envelope: bytes,
    envelope_type: str,
    store: TrustStore,
    now: datetime = NOW,
    subject: Any = SUBJECT,
) -> Verdict:
    return verify_notation(envelope, envelope_type, subject, store, now)


def refused(verdict: Verdict, reason: str) -> None:
    assert not verdict.trusted, verdict
    assert reason in verdict.reason, verdict.reason
    assert verdict.author == ""


# -- trusted signatures ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", [X509, SIGNING_AUTHORITY])
def test_a_signature_chaining_to_an_uploaded_root_is_trusted(
    ca: Pki, envelope_type: str, scheme: str
) -> None:
    envelope = SIGNERS[envelope_type](ca.chain, scheme=scheme)
    store = (
        TrustStore(ca=(ca.root.cert,))
        if scheme == X509
        else TrustStore(signing_authority=(ca.root.cert,))
    )

    verdict = verify(envelope, envelope_type, store)

    assert verdict.trusted, verdict.reason
    assert verdict.author == AUTHOR
    # an authentic signing time keeps the verdict past the certificate's expiry
    expected_end = ca.leaf.cert.not_valid_after_utc if scheme == X509 else None
    assert verdict.valid_until == expected_end
    assert verdict.details == {"signingScheme": scheme}


@pytest.mark.parametrize("key_kind", ["ec384", "ec521", "rsa2048", "rsa3072", "rsa4096"])
def test_every_allowed_key_signs_with_the_algorithm_it_implies(
    ca: Pki, envelope_type: str, key_kind: str
) -> None:
    signer = pki.leaf(ca.intermediate, key_kind=key_kind)
    envelope = SIGNERS[envelope_type]([signer, ca.intermediate, ca.root])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    assert verdict.trusted, verdict.reason


def test_an_uploaded_intermediate_is_enough_as_notation_has_it(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type](ca.chain)

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.intermediate.cert,)))

    assert verdict.trusted, verdict.reason


def test_a_self_signed_signing_certificate_alone_is_a_chain(envelope_type: str) -> None:
    alone = pki.certificate("wabbit signer", ca=False, eku=pki.CODE_SIGNING)
    envelope = SIGNERS[envelope_type]([alone])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(alone.cert,)))

    assert verdict.trusted, verdict.reason


@pytest.mark.parametrize("scheme", [X509, SIGNING_AUTHORITY])
def test_an_expiry_sets_an_earlier_valid_until(ca: Pki, envelope_type: str, scheme: str) -> None:
    expiry = NOW + 2 * DAY
    envelope = SIGNERS[envelope_type](ca.chain, expiry=expiry, scheme=scheme)
    store = TrustStore(ca=(ca.root.cert,), signing_authority=(ca.root.cert,))

    verdict = verify(envelope, envelope_type, store)

    assert verdict.trusted, verdict.reason
    assert verdict.valid_until == expiry


# -- integrity ------------------------------------------------------------------------------------


def test_a_tampered_payload_is_refused(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type](ca.chain)
    other = payload(size=SUBJECT.size + 1)
    if envelope_type == JWS:
        document = json.loads(envelope)
        document["payload"] = base64.urlsafe_b64encode(other).decode().rstrip("=")
        tampered = json.dumps(document).encode()
    else:
        protected, unprotected, _, signature = cbor2.loads(envelope).value
        tampered = cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), other, signature]))

    verdict = verify(tampered, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, "signature does not verify with the signing certificate's key")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"digest": "sha256:" + "0" * 64}, "the signature is for digest 'sha256:9d27"),
        ({"media_type": "application/vnd.oci.image.index.v1+json"}, "is for mediaType"),
        ({"size": 4321}, "the signature is for size 1234, not 4321"),
    ],
    ids=["digest", "mediaType", "size"],
)
def test_a_signature_of_another_manifest_is_refused(
    ca: Pki, envelope_type: str, change: dict[str, Any], reason: str
) -> None:
    envelope = SIGNERS[envelope_type](ca.chain)

    verdict = verify(
        envelope, envelope_type, TrustStore(ca=(ca.root.cert,)), subject=replace(SUBJECT, **change)
    )

    refused(verdict, reason)


def test_a_declared_algorithm_other_than_the_keys_is_refused(ca: Pki, envelope_type: str) -> None:
    signer = pki.leaf(ca.intermediate, key_kind="rsa3072")
    # a PS256 signature made with a key that implies PS384: algorithm substitution
    envelope = SIGNERS[envelope_type]([signer, ca.intermediate, ca.root], alg="PS256")

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, "declared algorithm PS256 is not PS384")


def test_an_unknown_payload_content_type_is_refused(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type](ca.chain, cty="application/json")

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, "unsupported payload content type 'application/json'")


# -- critical headers -----------------------------------------------------------------------------


def test_an_unknown_critical_header_is_refused(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type](
        ca.chain,
        extra={"com.example.rule": "strict"},
        critical=["io.cncf.notary.signingScheme", "com.example.rule"],
    )

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, "unknown critical header 'com.example.rule'")


def test_an_unknown_header_that_is_not_critical_is_ignored(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type](ca.chain, extra={"com.example.note": "informational"})

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    assert verdict.trusted, verdict.reason


def test_a_verification_plugin_cannot_be_honoured(ca: Pki, envelope_type: str) -> None:
    plugin = "io.cncf.notary.verificationPlugin"
    envelope = SIGNERS[envelope_type](
        ca.chain,
        extra={plugin: "com.example.nv2plugin"},
        critical=["io.cncf.notary.signingScheme", plugin],
    )

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, "asks for a verification plugin")


def test_an_expiry_not_marked_critical_is_refused(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type](
        ca.chain, expiry=NOW + DAY, critical=["io.cncf.notary.signingScheme"]
    )

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, f"header '{EXPIRY}' is present but not marked critical")


def test_a_signing_scheme_not_marked_critical_is_refused(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type](ca.chain, expiry=NOW + DAY, critical=[EXPIRY])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, "'io.cncf.notary.signingScheme' is present but not marked critical")


def test_a_critical_header_that_is_absent_is_refused(ca: Pki, envelope_type: str) -> None:
    critical = ["io.cncf.notary.signingScheme", EXPIRY]
    if envelope_type == JWS:  # jwcrypto will not sign this
        protected = {
            "alg": "ES256",
            "cty": "application/vnd.cncf.notary.payload.v1+json",
            "crit": critical,
            "io.cncf.notary.signingScheme": X509,
            "io.cncf.notary.signingTime": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        envelope = sign_jws_by_hand(ca.chain, protected)
    else:
        envelope = sign_cose(ca.chain, critical=critical)

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, f"critical header '{EXPIRY}' is listed but absent")


def test_an_unknown_signing_scheme_is_refused(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type](
        ca.chain, extra={"io.cncf.notary.signingScheme": "notary.pgp"}
    )

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, "unsupported signing scheme 'notary.pgp'")


# -- authenticity ---------------------------------------------------------------------------------


def test_a_chain_to_a_root_nobody_uploaded_is_refused(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type](ca.chain)
    stranger = pki.root("Someone Else's Root")

    verdict = verify(envelope, envelope_type, TrustStore(ca=(stranger.cert,)))

    refused(verdict, "no certificate of the chain is in the ca truststore")


def test_a_chain_through_a_dsa_key_is_refused_as_notation_refuses_it(envelope_type: str) -> None:
    """Go's crypto/x509 no longer verifies DSA signatures, so notation (and zot) refuse such a
    chain; cryptography still would, warning. Refused before any signature is verified with
    the DSA key (the suite would fail on the warning)."""
    root = pki.dsa_root()
    leaf = pki.leaf(root)
    envelope = SIGNERS[envelope_type]([leaf, root])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(root.cert,)))

    refused(verdict, "certificate 1 of the chain")
    refused(verdict, "has a DSA key, which notation does not verify")


@pytest.mark.parametrize("scheme", [X509, SIGNING_AUTHORITY])
def test_a_root_uploaded_as_the_wrong_truststore_type_is_refused(
    ca: Pki, envelope_type: str, scheme: str
) -> None:
    envelope = SIGNERS[envelope_type](ca.chain, scheme=scheme)
    # each scheme trusts one truststore type only; tsa certificates never sign artifacts
    wrong = (
        TrustStore(signing_authority=(ca.root.cert,), tsa=(ca.root.cert,))
        if scheme == X509
        else TrustStore(ca=(ca.root.cert,), tsa=(ca.root.cert,))
    )
    expected = "ca truststore" if scheme == X509 else "signingAuthority truststore"

    verdict = verify(envelope, envelope_type, wrong)

    refused(verdict, f"no certificate of the chain is in the {expected}")


def test_a_chain_with_a_certificate_missing_is_refused(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type]([ca.leaf, ca.root])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, "certificate 0 of the chain ('CN=wabbit signer")


def test_a_chain_that_stops_below_its_root_is_refused(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type]([ca.leaf, ca.intermediate])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.intermediate.cert,)))

    refused(verdict, "is the last one but is not a self-signed root")


@pytest.mark.parametrize(
    ("leaf_options", "reason"),
    [
        ({"usage_critical": False}, "key usage is not critical"),
        (
            {"usage": pki.usage(digital_signature=False, content_commitment=True)},
            "lacks digitalSignature",
        ),
        (
            {"usage": pki.usage(digital_signature=True, key_encipherment=True)},
            "must not have ['key_encipherment']",
        ),
        ({"eku": [pki.ExtendedKeyUsageOID.SERVER_AUTH]}, "must not have ['serverAuth']"),
        (
            {"eku": [pki.ExtendedKeyUsageOID.CODE_SIGNING, pki.ExtendedKeyUsageOID.TIME_STAMPING]},
            "must not have ['timeStamping']",
        ),
    ],
    ids=[
        "usage-not-critical",
        "no-digital-signature",
        "key-encipherment",
        "server-auth",
        "time-stamping",
    ],
)
def test_a_signing_certificate_the_specification_forbids_is_refused(
    ca: Pki, envelope_type: str, leaf_options: dict[str, Any], reason: str
) -> None:
    signer = pki.leaf(ca.intermediate, **leaf_options)
    envelope = SIGNERS[envelope_type]([signer, ca.intermediate, ca.root])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, reason)


def test_a_signing_certificate_that_is_a_ca_is_refused(ca: Pki, envelope_type: str) -> None:
    signer = pki.certificate(
        "wabbit signer",
        ca.intermediate,
        ca=True,
        usage=pki.usage(digital_signature=True, cert_sign=True),
    )
    envelope = SIGNERS[envelope_type]([signer, ca.intermediate, ca.root])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, "is a CA certificate")


@pytest.mark.parametrize(
    ("ca_options", "reason"),
    [
        ({"basic_constraints": False}, "lacks critical basic constraints with cA true"),
        ({"usage": pki.usage(digital_signature=True)}, "key usage lacks keyCertSign"),
    ],
    ids=["no-basic-constraints", "no-cert-sign"],
)
def test_an_intermediate_the_specification_forbids_is_refused(
    ca: Pki, envelope_type: str, ca_options: dict[str, Any], reason: str
) -> None:
    intermediate = pki.certificate("Odd Intermediate", ca.root, ca=True, **ca_options)
    signer = pki.leaf(intermediate)
    envelope = SIGNERS[envelope_type]([signer, intermediate, ca.root])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, reason)


def test_a_path_length_constraint_is_enforced(envelope_type: str) -> None:
    root = pki.root(path_length=0)
    intermediate = pki.certificate("Wabbit Intermediate CA", root, ca=True)
    signer = pki.leaf(intermediate)
    envelope = SIGNERS[envelope_type]([signer, intermediate, root])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(root.cert,)))

    refused(verdict, "allows 0 intermediates below it")


# -- time -----------------------------------------------------------------------------------------


def test_an_expired_signing_certificate_is_refused(envelope_type: str) -> None:
    root = pki.root(not_before=NOW - 30 * DAY)
    signer = pki.leaf(root, not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    envelope = SIGNERS[envelope_type]([signer, root], signed_at=NOW - 2 * DAY)

    verdict = verify(envelope, envelope_type, TrustStore(ca=(root.cert,)))

    refused(verdict, "has expired now")


def test_a_certificate_that_expires_later_is_refused_after_it_expires(
    ca: Pki, envelope_type: str
) -> None:
    envelope = SIGNERS[envelope_type](ca.chain)
    later = ca.leaf.cert.not_valid_after_utc + DAY

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)), now=later)

    refused(verdict, "'CN=wabbit signer,O=Wabbit Networks,ST=WA,C=US' has expired now")


def test_a_signing_time_outside_the_certificates_validity_is_refused(
    ca: Pki, envelope_type: str
) -> None:
    envelope = SIGNERS[envelope_type](ca.chain, signed_at=NOW - 3 * DAY)

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    refused(verdict, "is not yet valid at the signing time")


def test_a_signature_past_its_expiry_is_refused(ca: Pki, envelope_type: str) -> None:
    envelope = SIGNERS[envelope_type](ca.chain, expiry=NOW + DAY)

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)), now=NOW + DAY)

    refused(verdict, "the signature expired at")


def test_under_a_signing_authority_an_expired_certificate_is_trusted_for_what_it_signed_in_time(
    envelope_type: str,
) -> None:
    root = pki.root(not_before=NOW - 30 * DAY)
    signer = pki.leaf(root, not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    envelope = SIGNERS[envelope_type](
        [signer, root], scheme=SIGNING_AUTHORITY, signed_at=NOW - 2 * DAY
    )

    verdict = verify(envelope, envelope_type, TrustStore(signing_authority=(root.cert,)))

    assert verdict.trusted, verdict.reason


def test_under_a_signing_authority_a_signature_made_after_expiry_is_refused(
    envelope_type: str,
) -> None:
    root = pki.root(not_before=NOW - 30 * DAY)
    signer = pki.leaf(root, not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    envelope = SIGNERS[envelope_type]([signer, root], scheme=SIGNING_AUTHORITY, signed_at=NOW)

    verdict = verify(envelope, envelope_type, TrustStore(signing_authority=(root.cert,)))

    refused(verdict, "has expired at the signing time")


@pytest.mark.parametrize(
    ("scheme", "extra", "reason"),
    [
        (
            X509,
            {"io.cncf.notary.authenticSigningTime": NOW},
            "authenticSigningTime is not valid under notary.x509",
        ),
        (
            SIGNING_AUTHORITY,
            {"io.cncf.notary.signingTime": NOW},
            "signingTime is not valid under notary.x509.signingAuthority",
        ),
    ],
    ids=["x509", "signingAuthority"],
)
def test_a_time_attribute_of_the_other_scheme_is_refused(
    ca: Pki, envelope_type: str, scheme: str, extra: dict[str, Any], reason: str
) -> None:
    critical = ["io.cncf.notary.signingScheme", "io.cncf.notary.authenticSigningTime"]
    envelope = SIGNERS[envelope_type](ca.chain, scheme=scheme, extra=extra, critical=critical)

    verdict = verify(
        envelope, envelope_type, TrustStore(ca=(ca.root.cert,), signing_authority=(ca.root.cert,))
    )

    refused(verdict, reason)


def test_the_author_is_the_subject_as_zot_prints_it(ca: Pki, envelope_type: str) -> None:
    signer = pki.leaf(ca.intermediate)
    subject = x509.Name(
        [
            *ca.leaf.cert.subject,
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "42"),
            x509.NameAttribute(NameOID.POSTAL_CODE, "98101"),
        ]
    )
    # the same key and issuer under a subject with the attributes Go names and RFC 4514 does not
    renamed = pki.Issued(
        x509.CertificateBuilder(
            issuer_name=signer.cert.issuer,
            subject_name=subject,
            public_key=signer.key.public_key(),
            serial_number=x509.random_serial_number(),
            not_valid_before=signer.cert.not_valid_before_utc,
            not_valid_after=signer.cert.not_valid_after_utc,
            extensions=list(signer.cert.extensions),
        ).sign(ca.intermediate.key, pki.hashes.SHA256()),
        signer.key,
    )
    envelope = SIGNERS[envelope_type]([renamed, ca.intermediate, ca.root])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(ca.root.cert,)))

    assert verdict.trusted, verdict.reason
    assert verdict.author == "POSTALCODE=98101,SERIALNUMBER=42," + AUTHOR
