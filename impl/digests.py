"""Digests: the image-spec grammar, the registered algorithms, and hashing while streaming."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from ocireg.errors import ErrorCode, RegistryError

DIGEST_RE = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
# Registered algorithms we can compute, with the exact form of their encoded part.
ALGORITHMS: dict[str, re.Pattern[str]] = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
}
CANONICAL = "sha256"


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> Hasher: ...


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    @property
    def supported(self) -> bool:
        return self.algorithm in ALGORITHMS


def parse_digest(text: str) -> Digest:
    """Parse a digest, or raise DIGEST_INVALID. Unknown but well-formed algorithms pass."""
    match = DIGEST_RE.fullmatch(text)
    if match is None:
        raise RegistryError(
            ErrorCode.DIGEST_INVALID, {"digest": text, "reason": "malformed digest"}
        )
    algorithm, encoded = match.groups()
    pattern = ALGORITHMS.get(algorithm)
    if pattern is not None and not pattern.fullmatch(encoded):
        raise RegistryError(
            ErrorCode.DIGEST_INVALID,
            {"digest": text, "reason": f"{algorithm} digests are {pattern.pattern}"},
        )
    return Digest(algorithm, encoded)


def is_digest(text: str) -> bool:
    return DIGEST_RE.fullmatch(text) is not None


def require_supported(digest: Digest) -> Digest:
    if not digest.supported:
        raise RegistryError(
            ErrorCode.DIGEST_INVALID,
            {"digest": str(digest), "reason": f"unsupported algorithm; use {sorted(ALGORITHMS)}"},
        )
    return digest


def new_hasher(algorithm: str = CANONICAL) -> Hasher:
    return hashlib.new(algorithm)


def digest_bytes(data: bytes, algorithm: str = CANONICAL) -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
