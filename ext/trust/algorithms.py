"""The Notary Project's signature algorithms: which one a signing key implies, and checking a
primitive signature with it.

The certificate's key is the source of truth: the declared algorithm must be the one its type
and size imply, which defeats algorithm substitution (a PS256 header on a 4096-bit key fails).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .envelope import Refusal

_RSA_BY_BITS = {2048: "PS256", 3072: "PS384", 4096: "PS512"}
_EC_BY_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


def hash_for(alg: str) -> hashes.HashAlgorithm:
    """The digest algorithm of a Notary Project algorithm name (PS384 -> SHA-384)."""
    return _HASHES[alg[2:]]()


def algorithm_of(key: object) -> str:
    """The only algorithm a signing certificate's key may sign with."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size in _RSA_BY_BITS:
            return _RSA_BY_BITS[key.key_size]
        raise Refusal(f"RSA key of {key.key_size} bits: only 2048, 3072 and 4096 are allowed")
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name in _EC_BY_CURVE:
            return _EC_BY_CURVE[key.curve.name]
        raise Refusal(f"EC key on {key.curve.name}: only P-256, P-384 and P-521 are allowed")
    raise Refusal(f"signing key type {type(key).__name__} is not allowed (RSA or EC only)")


def verify_primitive(key: object, alg: str, data: bytes, signature: bytes) -> None:
    """Check the envelope's primitive signature over ``data``; ``alg`` is already known to be
    the key's. JWS and COSE both carry ECDSA as r || s and RSA-PSS with a salt the size of
    the digest."""
    digest = hash_for(alg)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            key.verify(signature, data, pss, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(_der_from_raw(signature, key.curve.key_size), data, ec.ECDSA(digest))
        else:  # algorithm_of refused it already
            raise Refusal("unsupported signing key")
    except InvalidSignature:
        raise Refusal(
            f"the {alg} signature does not verify with the signing certificate's key"
        ) from None


def _der_from_raw(signature: bytes, curve_bits: int) -> bytes:
    size = (curve_bits + 7) // 8
    if len(signature) != 2 * size:
        raise Refusal(f"ECDSA signature is {len(signature)} bytes; {2 * size} expected")
    r = int.from_bytes(signature[:size], "big")
    s = int.from_bytes(signature[size:], "big")
    return encode_dss_signature(r, s)
