"""Notary Project envelopes made the way a signer makes them, with libraries independent of
the verifier: JWS with ``jwcrypto``, COSE with ``pycose``; RFC 3161 tokens with ``openssl ts``.

Every keyword departs from a well-formed signature in one way, for one negative test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jwcrypto import jwk
from jwcrypto import jws as jwcrypto_jws
from jwcrypto.common import JWSEHeaderParameter
from pycose import algorithms as cose_algorithms
from pycose import headers as cose_headers
from pycose.keys import CoseKey
from pycose.messages import Sign1Message

from ocireg.ext.trust.verdict import Subject

from .pki import NOW, Issued

PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
AUTHENTIC_TIME = "io.cncf.notary.authenticSigningTime"
EXPIRY = "io.cncf.notary.expiry"
TIMESTAMP = "io.cncf.notary.timestampSignature"
X509 = "notary.x509"
SIGNING_AUTHORITY = "notary.x509.signingAuthority"

SUBJECT = Subject(
    digest="sha256:" + hashlib.sha256(b"the signed manifest").hexdigest(),
    media_type="application/vnd.oci.image.manifest.v1+json",
    size=1234,
)
_COSE_ALGS = {
    "PS256": cose_algorithms.Ps256,
    "PS384": cose_algorithms.Ps384,
    "PS512": cose_algorithms.Ps512,
    "ES256": cose_algorithms.Es256,
    "ES384": cose_algorithms.Es384,
    "ES512": cose_algorithms.Es512,
}


def payload(subject: Subject = SUBJECT, **target: Any) -> bytes:
    descriptor = {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size}
    descriptor.update(target)
    return json.dumps({"targetArtifact": descriptor}).encode()


def alg_for(issued: Issued) -> str:
    key = issued.key
    if isinstance(key, rsa.RSAPrivateKey):
        return {2048: "PS256", 3072: "PS384", 4096: "PS512"}[key.key_size]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]


def attributes(
    scheme: str = X509,
    signed_at: datetime = NOW,
    expiry: datetime | None = None,
    extra: dict[str, Any] | None = None,
    critical: Sequence[Any] | None = None,
) -> tuple[dict[str, Any], list[Any]]:
    """The Notary signed attributes (as datetimes) and their critical list."""
    time_name = SIGNING_TIME if scheme == X509 else AUTHENTIC_TIME
    values: dict[str, Any] = {SCHEME: scheme, time_name: signed_at}
    crit: list[Any] = [SCHEME] if scheme == X509 else [SCHEME, AUTHENTIC_TIME]
    if expiry is not None:
        values[EXPIRY] = expiry
        crit.append(EXPIRY)
    values.update(extra or {})
    return values, list(critical) if critical is not None else crit


def sign_jws(
    chain: Sequence[Issued],
    body: bytes | None = None,
    *,
    alg: str | None = None,
    cty: str = PAYLOAD_TYPE,
    **attribute_options: Any,
) -> bytes:
    values, crit = attributes(**attribute_options)
    protected = {"alg": alg or alg_for(chain[0]), "cty": cty, "crit": crit}
    for key, value in values.items():
        protected[key] = _rfc3339(value) if isinstance(value, datetime) else value
    header: dict[str, Any] = {"x5c": [base64.b64encode(c.der).decode() for c in chain]}
    # jwcrypto refuses to sign with names in `crit` it has not been told about
    registry = {
        n: JWSEHeaderParameter("notary", False, True, None) for n in crit if isinstance(n, str)
    }
    token = jwcrypto_jws.JWS(body if body is not None else payload(), header_registry=registry)
    token.add_signature(
        jwk.JWK.from_pyca(chain[0].key),
        alg=None,
        protected=json.dumps(protected),
        header=json.dumps(header),
    )
    return token.serialize(compact=False).encode()


def sign_cose(
    chain: Sequence[Issued],
    body: bytes | None = None,
    *,
    alg: str | None = None,
    cty: str = PAYLOAD_TYPE,
    x5chain_protected: bool = False,
    **attribute_options: Any,
) -> bytes:
    values, crit = attributes(**attribute_options)
    protected: dict[Any, Any] = {
        cose_headers.Algorithm: _COSE_ALGS[alg or alg_for(chain[0])],
        cose_headers.Critical: crit,
        cose_headers.ContentType: cty,
    }
    for key, value in values.items():
        # epoch-based date/time: CBOR tag 1
        protected[key] = (
            cbor2.CBORTag(1, int(value.timestamp())) if isinstance(value, datetime) else value
        )
    unprotected: dict[Any, Any] = {}
    # the specification allows x5chain in the protected header too
    (protected if x5chain_protected else unprotected)[cose_headers.X5chain] = [c.der for c in chain]
    message = Sign1Message(
        phdr=protected, uhdr=unprotected, payload=body if body is not None else payload()
    )
    message.key = CoseKey.from_pem_private_key(chain[0].key_pem.decode())
    return bytes(message.encode(tag=True))


def sign_jws_by_hand(chain: Sequence[Issued], protected: dict[str, Any]) -> bytes:
    """An ES256 JWS signed with ``cryptography`` directly, for protected headers jwcrypto
    refuses to sign (a critical header that is absent)."""
    key = chain[0].key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    encode = lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")  # noqa: E731
    protected_b64, payload_b64 = encode(json.dumps(protected).encode()), encode(payload())
    der = key.sign(f"{protected_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    envelope = {
        "payload": payload_b64,
        "protected": protected_b64,
        "header": {"x5c": [base64.b64encode(c.der).decode() for c in chain]},
        "signature": encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
    }
    return json.dumps(envelope).encode()


def jws_signature(envelope: bytes) -> bytes:
    value = json.loads(envelope)["signature"]
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def cose_signature(envelope: bytes) -> bytes:
    return bytes(cbor2.loads(envelope).value[3])


def with_jws_timestamp(envelope: bytes, token: bytes) -> bytes:
    """The timestamp is an unsigned attribute: a signer adds it after signing, as here."""
    document = json.loads(envelope)
    document["header"][TIMESTAMP] = base64.b64encode(token).decode()
    return json.dumps(document).encode()


def with_cose_timestamp(envelope: bytes, token: bytes) -> bytes:
    protected, unprotected, body, signature = cbor2.loads(envelope).value
    unprotected = dict(unprotected)
    unprotected[TIMESTAMP] = token
    return bytes(cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, body, signature])))


def _rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


_TSA_CONFIG = """\
[tsa]
default_tsa = tsa_config
[tsa_config]
serial = {serial}
signer_digest = sha256
default_policy = 1.2.3.4.1
accuracy = secs:1
ess_cert_id_alg = sha256
ess_cert_id_chain = no
digests = sha256, sha384, sha512
"""


def openssl_timestamp(
    openssl: str, workdir: Path, message: bytes, tsa: Issued, carried: Sequence[Issued]
) -> bytes:
    """An RFC 3161 TimeStampToken over ``message`` (the envelope's primitive signature), made
    by ``openssl ts`` as a TSA; its genTime is the machine's clock."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "serial").write_text("01\n")
    (workdir / "ts.cnf").write_text(_TSA_CONFIG.format(serial=workdir / "serial"))
    (workdir / "tsa.pem").write_bytes(tsa.pem)
    (workdir / "tsa.key").write_bytes(tsa.key_pem)
    (workdir / "chain.pem").write_bytes(b"".join(c.pem for c in carried))
    imprint = hashlib.sha256(message).hexdigest()
    query, token = workdir / "request.tsq", workdir / "token.der"
    run = {"check": True, "capture_output": True}
    subprocess.run(
        [
            openssl,
            "ts",
            "-query",
            "-digest",
            imprint,
            "-sha256",
            "-cert",
            "-no_nonce",
            "-out",
            query,
        ],
        **run,
    )
    subprocess.run(
        [
            openssl, "ts", "-reply", "-config", workdir / "ts.cnf", "-queryfile", query,
            "-signer", workdir / "tsa.pem", "-inkey", workdir / "tsa.key",
            "-chain", workdir / "chain.pem", "-token_out", "-out", token,
        ],
        **run,
    )  # fmt: skip
    return token.read_bytes()
