"""RFC 3161 countersignatures under the notary.x509 scheme, with tokens made by ``openssl ts``:
a timestamp from an uploaded TSA makes a signature outlive its certificate, and only then."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ocireg.ext.trust.notation import verify_notation
from ocireg.ext.trust.verdict import TrustStore, Verdict
from tests.tools import require_binary

from . import pki
from .pki import DAY, NOW, Issued
from .signers import (
    SIGNING_AUTHORITY,
    SUBJECT,
    cose_signature,
    jws_signature,
    openssl_timestamp,
    sign_cose,
    sign_jws,
    with_cose_timestamp,
    with_jws_timestamp,
)

JWS, COSE = "application/jose+json", "application/cose"
FORMATS: dict[
    str, tuple[Callable[..., bytes], Callable[[bytes], bytes], Callable[[bytes, bytes], bytes]]
] = {
    JWS: (sign_jws, jws_signature, with_jws_timestamp),
    COSE: (sign_cose, cose_signature, with_cose_timestamp),
}
# the signing certificate expired yesterday; the signatures were made (and stamped) before
LATER = NOW + 40 * DAY


class Tsa:
    def __init__(self, openssl: str, workdir: Path) -> None:
        self.openssl, self.workdir = openssl, workdir
        self.root = pki.root(
            "Wabbit TSA Root", not_before=NOW - 400 * DAY, not_after=NOW + 400 * DAY
        )
        self.signer = pki.tsa_leaf(self.root)

    def stamp(self, message: bytes, name: str = "token") -> bytes:
        return openssl_timestamp(
            self.openssl, self.workdir / name, message, self.signer, [self.root]
        )


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Tsa:
    openssl = require_binary("openssl", "apt-get install openssl")
    return Tsa(openssl, tmp_path_factory.mktemp("tsa"))


@pytest.fixture(scope="module")
def signing() -> tuple[Issued, Issued]:
    """A root and a leaf valid for the month now ends, so that LATER is past its expiry."""
    root = pki.root(not_before=NOW - 30 * DAY, not_after=NOW + 400 * DAY)
    return root, pki.leaf(root, not_before=NOW - DAY, not_after=NOW + 30 * DAY)


@pytest.fixture(params=[JWS, COSE], ids=["jws", "cose"])
def envelope_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def stamped(tsa: Tsa, envelope_type: str, chain: list[Issued], **options: object) -> bytes:
    sign, signature_of, add_timestamp = FORMATS[envelope_type]
    envelope = sign(chain, **options)
    return add_timestamp(envelope, tsa.stamp(signature_of(envelope)))


def verify(envelope: bytes, envelope_type: str, store: TrustStore, now: object = LATER) -> Verdict:
    return verify_notation(envelope, envelope_type, SUBJECT, store, now)  # type: ignore[arg-type]


def test_a_timestamp_from_an_uploaded_tsa_outlives_the_signing_certificate(
    tsa: Tsa, signing: tuple[Issued, Issued], envelope_type: str
) -> None:
    root, leaf = signing
    envelope = stamped(tsa, envelope_type, [leaf, root])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(root.cert,), tsa=(tsa.root.cert,)))

    assert verdict.trusted, verdict.reason
    assert verdict.valid_until is None  # the timestamp, not the clock, keeps it trusted


def test_without_an_uploaded_tsa_the_timestamp_counts_for_nothing(
    tsa: Tsa, signing: tuple[Issued, Issued], envelope_type: str
) -> None:
    root, leaf = signing
    envelope = stamped(tsa, envelope_type, [leaf, root])

    verdict = verify(envelope, envelope_type, TrustStore(ca=(root.cert,)))

    assert not verdict.trusted
    assert "'CN=wabbit signer,O=Wabbit Networks,ST=WA,C=US' has expired now" in verdict.reason


def test_a_timestamp_from_a_tsa_nobody_uploaded_is_refused(
    tsa: Tsa, signing: tuple[Issued, Issued], envelope_type: str
) -> None:
    root, leaf = signing
    envelope = stamped(tsa, envelope_type, [leaf, root])
    other_tsa_root = pki.root("Another TSA Root")

    verdict = verify(
        envelope, envelope_type, TrustStore(ca=(root.cert,), tsa=(other_tsa_root.cert,))
    )

    assert not verdict.trusted
    assert "leads to no uploaded tsa certificate" in verdict.reason


def test_a_timestamp_of_another_signature_is_refused(
    tsa: Tsa, signing: tuple[Issued, Issued], envelope_type: str
) -> None:
    root, leaf = signing
    sign, _, add_timestamp = FORMATS[envelope_type]
    envelope = add_timestamp(sign([leaf, root]), tsa.stamp(b"some other signature", "other"))

    verdict = verify(envelope, envelope_type, TrustStore(ca=(root.cert,), tsa=(tsa.root.cert,)))

    assert not verdict.trusted
    assert "message imprint is not the hash of the envelope's signature" in verdict.reason


def test_a_timestamp_made_after_the_certificate_expired_is_refused(
    tsa: Tsa, envelope_type: str
) -> None:
    root = pki.root(not_before=NOW - 30 * DAY)
    expired = pki.leaf(root, not_before=NOW - 10 * DAY, not_after=NOW - DAY)
    # the signer claims a time inside the validity; the TSA says when it really was
    envelope = stamped(tsa, envelope_type, [expired, root], signed_at=NOW - 2 * DAY)

    verdict = verify(envelope, envelope_type, TrustStore(ca=(root.cert,), tsa=(tsa.root.cert,)))

    assert not verdict.trusted
    assert "has expired at the timestamp's time" in verdict.reason


def test_a_corrupted_timestamp_is_refused(
    tsa: Tsa, signing: tuple[Issued, Issued], envelope_type: str
) -> None:
    root, leaf = signing
    sign, signature_of, add_timestamp = FORMATS[envelope_type]
    envelope = sign([leaf, root])
    token = bytearray(tsa.stamp(signature_of(envelope), "corrupt"))
    token[-5] ^= 0xFF  # inside the TSA's signature value

    verdict = verify(
        add_timestamp(envelope, bytes(token)),
        envelope_type,
        TrustStore(ca=(root.cert,), tsa=(tsa.root.cert,)),
        now=NOW,
    )

    assert not verdict.trusted
    assert "timestamp token's signature does not verify" in verdict.reason


def test_a_truncated_timestamp_is_refused_not_raised(
    tsa: Tsa, signing: tuple[Issued, Issued], envelope_type: str
) -> None:
    root, leaf = signing
    sign, signature_of, add_timestamp = FORMATS[envelope_type]
    envelope = sign([leaf, root])
    token = tsa.stamp(signature_of(envelope), "truncated")

    verdict = verify(
        add_timestamp(envelope, token[: len(token) // 2]),
        envelope_type,
        TrustStore(ca=(root.cert,), tsa=(tsa.root.cert,)),
        now=NOW,
    )

    assert not verdict.trusted
    assert "not a well-formed RFC 3161 TimeStampToken" in verdict.reason


def test_under_a_signing_authority_the_timestamp_is_not_consulted(
    tsa: Tsa, signing: tuple[Issued, Issued], envelope_type: str
) -> None:
    root, leaf = signing
    sign, _, add_timestamp = FORMATS[envelope_type]
    # a timestamp that would fail, on a signature whose authentic signing time is what counts
    envelope = add_timestamp(sign([leaf, root], scheme=SIGNING_AUTHORITY), b"not a token")

    verdict = verify(
        envelope, envelope_type, TrustStore(signing_authority=(root.cert,), tsa=(tsa.root.cert,))
    )

    assert verdict.trusted, verdict.reason


def test_an_uploaded_tsa_does_not_demand_a_timestamp_while_the_certificate_is_valid(
    signing: tuple[Issued, Issued], envelope_type: str
) -> None:
    # zot's policy lists a tsa truststore for every signature; notation's `always` would then
    # refuse every unstamped one as soon as one TSA certificate is uploaded. ocireg asks for the
    # timestamp only where it is needed: once the signing certificate has expired.
    root, leaf = signing
    envelope = FORMATS[envelope_type][0]([leaf, root])
    store = TrustStore(ca=(root.cert,), tsa=(pki.root("Wabbit TSA Root").cert,))

    assert verify(envelope, envelope_type, store, now=NOW).trusted
    expired = verify(envelope, envelope_type, store, now=LATER)
    assert not expired.trusted
    assert "has expired now" in expired.reason
