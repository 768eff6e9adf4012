"""The JWS envelope (``application/jose+json``): flattened JWS JSON serialization, parsed and
checked as the Notary Project's JWS envelope specification says."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any

from ocireg import jsonparse

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

MEDIA_TYPE = "application/jose+json"
_ALGS = frozenset({"PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
# JWS registered header names (RFC 7515 §4.1): `crit` must not list them.
_REGISTERED = frozenset(
    {"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit"}
)
_TOP_LEVEL = frozenset({"payload", "protected", "header", "signature"})
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# RFC 3339 date-time; the specification discourages fractions of a second but allows them.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def parse(envelope: bytes) -> SignedEnvelope:
    document = _json_object(envelope, "the JWS envelope")
    if "signatures" in document:
        raise Refusal("JWS general serialization is not allowed; only flattened JSON")
    extra = set(document) - _TOP_LEVEL
    if extra:
        raise Refusal(f"JWS envelope has fields the specification does not allow: {sorted(extra)}")
    protected_b64 = _string(document, "protected")
    payload_b64 = _string(document, "payload")
    protected = _json_object(_b64url(protected_b64, "protected"), "the JWS protected header")
    unprotected = document.get("header")
    if not isinstance(unprotected, dict):
        raise Refusal("JWS unprotected header is missing or not an object")
    if set(protected) & set(unprotected):
        raise Refusal("a header appears both protected and unprotected")
    return SignedEnvelope(
        payload=_b64url(payload_b64, "payload"),
        signing_input=f"{protected_b64}.{payload_b64}".encode("ascii"),
        signature=_b64url(_string(document, "signature"), "signature"),
        alg=_alg(protected),
        content_type=str(protected.get("cty")),  # checked by _checked_attributes
        signing_scheme=_checked_attributes(protected),
        signing_time=_time(protected, SIGNING_TIME),
        authentic_signing_time=_time(protected, AUTHENTIC_SIGNING_TIME),
        expiry=_time(protected, EXPIRY),
        certificates=_x5c(unprotected),
        timestamp_token=_timestamp(unprotected),
    )


def _checked_attributes(protected: dict[str, Any]) -> str:
    critical = protected.get("crit")
    if not isinstance(critical, list) or not all(isinstance(n, str) for n in critical):
        raise Refusal("JWS protected header has no `crit` list of strings")
    registered = _REGISTERED.intersection(critical)
    if registered:
        raise Refusal(f"`crit` lists registered JWS headers: {sorted(registered)}")
    check_critical(critical, set(protected))
    return check_signed_attributes(
        protected.get(SIGNING_SCHEME),
        protected.get("cty"),
        _time(protected, SIGNING_TIME),
        _time(protected, AUTHENTIC_SIGNING_TIME),
    )


def _alg(protected: dict[str, Any]) -> str:
    alg = protected.get("alg")
    if alg not in _ALGS:
        raise Refusal(f"JWS alg {alg!r} is not one the Notary Project allows")
    return str(alg)


def _time(header: dict[str, Any], name: str) -> datetime | None:
    if name not in header:
        return None
    value = header[name]
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise Refusal(f"{name} is not an RFC 3339 date-time: {value!r}")
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise Refusal(f"{name} is not a valid date-time: {value!r}") from None


def _x5c(unprotected: dict[str, Any]) -> tuple[bytes, ...]:
    chain = unprotected.get("x5c")
    if not isinstance(chain, list) or not chain:
        raise Refusal("JWS unprotected header has no x5c certificate chain")
    return tuple(_b64std(item, "x5c") for item in chain)


def _timestamp(unprotected: dict[str, Any]) -> bytes | None:
    if TIMESTAMP_SIGNATURE not in unprotected:
        return None
    return _b64std(unprotected[TIMESTAMP_SIGNATURE], TIMESTAMP_SIGNATURE)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        document = jsonparse.loads(raw, strict=True)  # duplicate names refused, as RFC 7515 asks
    except jsonparse.JSONError as error:
        raise Refusal(f"{what} is not acceptable JSON: {error}") from None
    if not isinstance(document, dict):
        raise Refusal(f"{what} is not a JSON object")
    return document


def _string(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str):
        raise Refusal(f"JWS envelope has no {name!r} string")
    return value


def _b64url(value: str, what: str) -> bytes:
    """Base64url without padding, as RFC 7515 §2 requires (no '=', no other alphabet)."""
    if not _BASE64URL.fullmatch(value) or len(value) % 4 == 1:
        raise Refusal(f"JWS {what} is not unpadded base64url")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _b64std(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise Refusal(f"{what} holds a value that is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Refusal(f"{what} holds a value that is not standard base64") from None
