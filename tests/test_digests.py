from __future__ import annotations

import hashlib

import pytest

from ocireg.digests import Digest, digest_bytes, new_hasher, parse_digest, require_supported
from ocireg.errors import ErrorCode, RegistryError

SHA256 = "sha256:" + "a" * 64
SHA512 = "sha512:" + "b" * 128


@pytest.mark.parametrize(
    "text",
    [
        SHA256,
        SHA512,
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
    ],
)
def test_valid_digests(text: str) -> None:
    assert str(parse_digest(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        "sha256:",
        ":abc",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "SHA256:" + "a" * 64,
        "sha512:" + "b" * 64,
        "sha256:abc!",
    ],
)
def test_invalid_digests(text: str) -> None:
    with pytest.raises(RegistryError) as raised:
        parse_digest(text)
    assert raised.value.code is ErrorCode.DIGEST_INVALID


def test_unknown_algorithm_parses_but_is_not_supported() -> None:
    digest = parse_digest("blake3:abcdef")
    assert not digest.supported
    with pytest.raises(RegistryError):
        require_supported(digest)


def test_hashing() -> None:
    assert digest_bytes(b"x") == Digest("sha256", hashlib.sha256(b"x").hexdigest())
    assert digest_bytes(b"x", "sha512").encoded == hashlib.sha512(b"x").hexdigest()
    hasher = new_hasher()
    hasher.update(b"a")
    hasher.update(b"b")
    assert hasher.hexdigest() == hashlib.sha256(b"ab").hexdigest()
