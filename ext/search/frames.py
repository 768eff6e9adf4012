"""Frames between a worker process and its search process: a 4-byte big-endian length, then
that many bytes of pickle. Both ends are this package, started by the same interpreter; nothing
else writes to these pipes."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any, BinaryIO

_HEAD = 4


def encode(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(_HEAD, "big") + data


def write_frame(out: BinaryIO, value: Any) -> None:
    out.write(encode(value))
    out.flush()


def read_frame(source: BinaryIO) -> Any | None:
    """The next value, or None at the end of the stream."""
    head = source.read(_HEAD)
    if len(head) < _HEAD:
        return None
    size = int.from_bytes(head, "big")
    data = source.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


async def next_frame(source: asyncio.StreamReader) -> Any:
    """The next value; asyncio.IncompleteReadError at the end of the stream."""
    size = int.from_bytes(await source.readexactly(_HEAD), "big")
    return pickle.loads(await source.readexactly(size))
