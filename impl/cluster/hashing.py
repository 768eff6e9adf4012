"""SipHash-2-4 and the owner of a repository, exactly as zot's ``cluster.ComputeTargetMember``.

zot hashes with ``github.com/dchest/siphash``: ``siphash.New([]byte(hashKey))`` reads the two
64-bit key words little-endian from the 16 bytes of ``hashKey``, ``Sum64`` is SipHash-2-4's
64-bit output, and the owner is ``members[sum64 % len(members)]``. The same file on every
member therefore names the same owner everywhere, ours or zot's.
"""

from __future__ import annotations

_MASK = (1 << 64) - 1


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (64 - bits))) & _MASK


def _rounds(v: list[int], count: int) -> None:
    v0, v1, v2, v3 = v
    for _ in range(count):
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    v[:] = [v0, v1, v2, v3]


def siphash24(key: bytes, message: bytes) -> int:
    """SipHash-2-4 of ``message`` under the 16-byte ``key``, as an unsigned 64-bit integer."""
    if len(key) != 16:
        raise ValueError("a SipHash key is 16 bytes")
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261]
    v.append(k1 ^ 0x7465646279746573)
    whole = len(message) - len(message) % 8
    for at in range(0, whole, 8):
        word = int.from_bytes(message[at : at + 8], "little")
        v[3] ^= word
        _rounds(v, 2)
        v[0] ^= word
    last = int.from_bytes(message[whole:], "little") | ((len(message) & 0xFF) << 56)
    v[3] ^= last
    _rounds(v, 2)
    v[0] ^= last
    v[2] ^= 0xFF
    _rounds(v, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def owner_index(hash_key: str, members: int, repository: str) -> int:
    """The index in ``cluster.members`` of the member that owns ``repository``."""
    return siphash24(hash_key.encode(), repository.encode()) % members
