"""Go binaries: the build information the Go linker embeds (what ``go version -m`` prints).

The ``.go.buildinfo`` section starts with a 32-byte header, 16-byte aligned: the magic
``\\xff Go buildinf:``, the pointer size, a flags byte. Since Go 1.18 (flags bit 2) the Go
version and the module information follow inline as two varint-prefixed strings; the module
information is framed by two 16-byte sentinels and holds ``path``, ``mod``, ``dep`` and ``=>``
(replacement) lines. The binary is scanned as it streams by, in chunks: nothing is kept but a
chunk and the overlap a split magic needs. Binaries built before Go 1.18 (pointers instead of
inline strings, which a stream cannot follow back) are not read; only ELF executables are.
"""

from __future__ import annotations

from typing import IO

from .records import Record

ELF_MAGIC = b"\x7fELF"
BUILDINFO_MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
FLAG_INLINE_STRINGS = 0x2
MODINFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
MODINFO_END = bytes.fromhex("f932433186182072008242104116d8f2")
CHUNK = 1024 * 1024
MAX_INFO = 4 * 1024 * 1024  # the version and module strings together, at most


def _uvarint(data: bytes, at: int) -> tuple[int, int] | None:
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7
    return None


def _strings(data: bytes) -> tuple[str, str] | bool | None:
    """From the bytes after the header: (Go version, module info); None when they are not
    valid; False when more bytes are needed."""
    first = _uvarint(data, 0)
    if first is None:
        return False if len(data) < 10 else None
    length, at = first
    if length > MAX_INFO:
        return None
    second = _uvarint(data, at + length)
    if second is None:
        return False if len(data) < at + length + 10 else None
    info_length, info_at = second
    if length + info_length > MAX_INFO:
        return None
    if len(data) < info_at + info_length:
        return False
    version = data[at : at + length].decode("utf-8", "replace")
    info = data[info_at : info_at + info_length]
    if not version.startswith("go"):
        return None
    if len(info) >= 32 and info.startswith(MODINFO_START) and info.endswith(MODINFO_END):
        info = info[16:-16]
    return version, info.decode("utf-8", "replace")


def build_info(stream: IO[bytes]) -> tuple[str, str] | None:
    """The Go version and module information of an ELF binary, or None (not Go, or too old)."""
    data = stream.read(CHUNK)
    if not data.startswith(ELF_MAGIC):
        return None
    base = 0  # file offset of data[0]
    while True:
        found = _find_aligned(data, base)
        if found is not None:
            rest = data[found + HEADER_SIZE :]
            if data[found + 15] & FLAG_INLINE_STRINGS == 0:
                return None
            while (strings := _strings(rest)) is False:
                more = stream.read(CHUNK)
                if not more or len(rest) > MAX_INFO + 32:
                    return None
                rest += more
            return strings if isinstance(strings, tuple) else None
        more = stream.read(CHUNK)
        if not more:
            return None
        # a magic (and its header) split by chunks
        keep = min(len(data), len(BUILDINFO_MAGIC) + HEADER_SIZE)
        base += len(data) - keep
        data = data[-keep:] + more


def _find_aligned(data: bytes, base: int) -> int | None:
    at = data.find(BUILDINFO_MAGIC)
    while at >= 0:
        if (base + at) % 16 == 0 and at + HEADER_SIZE <= len(data):
            return at
        at = data.find(BUILDINFO_MAGIC, at + 1)
    return None


def _version(raw: str) -> str:
    return raw.removeprefix("v")


def records(go_version: str, info: str) -> tuple[Record, ...]:
    """The standard library (``stdlib``, as the Go vulnerability database names it), the main
    module when it has a version, and every dependency (replaced ones as replaced)."""
    toolchain = go_version.split()[0].removeprefix("go")
    found = [Record(kind="golang", name="stdlib", version=toolchain)]
    for line in info.splitlines():
        words = line.split("\t")
        if words[0] in ("mod", "dep") and len(words) >= 3:
            found.append(_module(words[1], words[2]))
        elif words[0] == "=>" and len(words) >= 3 and len(found) > 1:
            if words[2]:
                found[-1] = _module(words[1], words[2])
            else:
                found.pop()  # replaced by a local directory: no module version to match
    return tuple(r for r in found if r.version and r.version != "(devel)")


def _module(path: str, version: str) -> Record:
    return Record(kind="golang", name=path, version=_version(version), raw_version=version)
