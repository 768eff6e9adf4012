"""The COSE envelope (``application/cose``): a tagged COSE_Sign1 (RFC 9052), parsed and
checked as the Notary Project's COSE envelope specification says."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import cbor2

from .envelope import (
    AUTHENTIC_SIGNING_TIME,
    EXPIRY,
    SIGNING_SCHEME,
    SIGNING_TIME,
    TIMESTAMP_SIGNATURE,
    Refusal,
    SignedEnvelope,
    check_critical,
    check_signed_attributes,
)

MEDIA_TYPE = "application/cose"
_COSE_SIGN1_TAG = 18
_ALG, _CRIT, _CONTENT_TYPE, _X5CHAIN = 1, 2, 3, 33
_ALGS = {-37: "PS256", -38: "PS384", -39: "PS512", -7: "ES256", -35: "ES384", -36: "ES512"}


def parse(envelope: bytes) -> SignedEnvelope:
    protected_bytes, unprotected, payload, signature = _sign1(envelope)
    protected = _header_map(protected_bytes)
    return SignedEnvelope(
        payload=payload,
        signing_input=cbor2.dumps(["Signature1", protected_bytes, b"", payload]),
        signature=signature,
        alg=_alg(protected),
        content_type=str(protected.get(_CONTENT_TYPE)),  # checked by _checked_attributes
        signing_scheme=_checked_attributes(protected),
        signing_time=_time(protected, SIGNING_TIME),
        authentic_signing_time=_time(protected, AUTHENTIC_SIGNING_TIME),
        expiry=_time(protected, EXPIRY),
        certificates=_x5chain(protected, unprotected),
        timestamp_token=_timestamp(unprotected),
    )


def _sign1(envelope: bytes) -> tuple[bytes, Mapping[Any, Any], bytes, bytes]:
    try:
        message = cbor2.loads(envelope)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
        raise Refusal("the COSE envelope is not CBOR") from None
    if not isinstance(message, cbor2.CBORTag) or message.tag != _COSE_SIGN1_TAG:
        raise Refusal("the COSE envelope is not a tagged COSE_Sign1")
    parts = message.value
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        raise Refusal("COSE_Sign1 is not an array of four items")
    protected, unprotected, payload, signature = parts
    if not isinstance(protected, bytes) or not protected:
        raise Refusal("COSE_Sign1 has no protected header")
    if not isinstance(unprotected, Mapping):
        raise Refusal("COSE_Sign1 unprotected header is not a map")
    if not isinstance(payload, bytes):
        raise Refusal("COSE_Sign1 has no attached payload")
    if not isinstance(signature, bytes):
        raise Refusal("COSE_Sign1 signature is not a byte string")
    return protected, unprotected, payload, signature


def _header_map(protected_bytes: bytes) -> Mapping[Any, Any]:
    try:
        protected = cbor2.loads(protected_bytes)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
        raise Refusal("the COSE protected header is not CBOR") from None
    if not isinstance(protected, Mapping):
        raise Refusal("the COSE protected header is not a map")
    return protected


def _checked_attributes(protected: Mapping[Any, Any]) -> str:
    critical = protected.get(_CRIT)
    if not isinstance(critical, list | tuple) or not critical:
        raise Refusal("COSE protected header has no crit list")
    for label in critical:
        if isinstance(label, int) and 0 <= label <= 8:
            raise Refusal(f"crit lists COSE header label {label}, which it must not")
        if not isinstance(label, str):
            raise Refusal(f"unknown critical header {label!r}")
    present = {label for label in protected if isinstance(label, str)}
    check_critical(list(critical), present)
    return check_signed_attributes(
        protected.get(SIGNING_SCHEME),
        protected.get(_CONTENT_TYPE),
        _time(protected, SIGNING_TIME),
        _time(protected, AUTHENTIC_SIGNING_TIME),
    )


def _alg(protected: Mapping[Any, Any]) -> str:
    alg = protected.get(_ALG)
    if not isinstance(alg, int) or isinstance(alg, bool) or alg not in _ALGS:
        raise Refusal(f"COSE alg {alg!r} is not one the Notary Project allows")
    return _ALGS[alg]


def _time(header: Mapping[Any, Any], name: str) -> datetime | None:
    """Epoch-based date/time (tag 1); cbor2 hands it over as an aware datetime."""
    if name not in header:
        return None
    value = header[name]
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Refusal(f"{name} is not a CBOR date/time: {value!r}")
    return value


def _x5chain(protected: Mapping[Any, Any], unprotected: Mapping[Any, Any]) -> tuple[bytes, ...]:
    """Label 33, in the unprotected header or, as the specification allows, the protected one;
    one certificate may come as a bare byte string (RFC 9360)."""
    if _X5CHAIN in protected and _X5CHAIN in unprotected:
        raise Refusal("x5chain appears both protected and unprotected")
    chain = protected.get(_X5CHAIN, unprotected.get(_X5CHAIN))
    if isinstance(chain, bytes):
        chain = [chain]
    if not isinstance(chain, list | tuple) or not chain:
        raise Refusal("COSE envelope has no x5chain certificate chain")
    if not all(isinstance(item, bytes) for item in chain):
        raise Refusal("x5chain holds an item that is not a byte string")
    return tuple(chain)


def _timestamp(unprotected: Mapping[Any, Any]) -> bytes | None:
    if TIMESTAMP_SIGNATURE not in unprotected:
        return None
    token = unprotected[TIMESTAMP_SIGNATURE]
    if not isinstance(token, bytes):
        raise Refusal(f"{TIMESTAMP_SIGNATURE} is not a byte string")
    return token
