from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from typing import Any, BinaryIO, cast

import pytest

from ocireg.readahead import read_ahead

PIECE = 1000


class Endless(io.RawIOBase):
    """A handle that always has more, counting what was read from it."""

    def __init__(self) -> None:
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        view[:] = b"x" * len(view)
        self.given += len(view)
        return len(view)


class Broken(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise ConnectionResetError("the endpoint went away")


def _pumps() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "ocireg-read-ahead"]


def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


async def _collect(handle: BinaryIO, length: int | None, depth: int = 2) -> list[bytes]:
    return [bytes(piece) async for piece in read_ahead(handle, length, PIECE, depth)]


@pytest.mark.parametrize(
    ("size", "length"),
    [(0, None), (1, None), (PIECE, None), (3 * PIECE + 7, None), (3 * PIECE + 7, 2 * PIECE + 1)],
)
def test_hands_out_the_exact_bytes_in_pieces_and_closes_the_handle(
    size: int, length: int | None
) -> None:
    data = os.urandom(size)
    handle = io.BytesIO(data)
    pieces = asyncio.run(_collect(handle, length))
    wanted = data if length is None else data[:length]
    assert b"".join(pieces) == wanted
    assert all(len(piece) == PIECE for piece in pieces[:-1])
    assert handle.closed
    _until(lambda: not _pumps())


def test_a_short_handle_ends_the_pieces_where_it_ends() -> None:
    data = os.urandom(PIECE + 5)
    pieces = asyncio.run(_collect(io.BytesIO(data), 10 * PIECE))
    assert b"".join(pieces) == data


def test_a_slow_consumer_holds_the_reader_to_depth_pieces_ahead() -> None:
    handle = Endless()

    async def take_one_then_wait() -> None:
        pieces = read_ahead(cast(BinaryIO, handle), None, PIECE, depth=3)
        await anext(pieces)
        await asyncio.sleep(0.3)  # the reader runs on meanwhile, as far as it may
        await cast(Any, pieces).aclose()

    asyncio.run(take_one_then_wait())
    # three waiting, one taken and its room given back: four pieces read, then no more
    assert handle.given == 4 * PIECE
    _until(lambda: handle.closed and not _pumps())


def test_a_consumer_that_stops_midway_closes_the_handle_and_ends_the_thread() -> None:
    handle = Endless()

    async def stop_after_two() -> None:
        async for index, _ in _enumerate(read_ahead(cast(BinaryIO, handle), None, PIECE)):
            if index == 1:
                break

    asyncio.run(stop_after_two())
    _until(lambda: handle.closed and not _pumps())


def test_a_cancelled_consumer_closes_the_handle_and_ends_the_thread() -> None:
    handle = Endless()

    async def cancelled() -> None:
        async def consume() -> None:
            async for _ in read_ahead(cast(BinaryIO, handle), None, PIECE):
                await asyncio.sleep(10)  # a client that stopped reading

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    _until(lambda: handle.closed and not _pumps())


def test_a_read_error_is_raised_to_the_consumer_and_the_handle_closed() -> None:
    handle = Broken()
    with pytest.raises(ConnectionResetError, match="went away"):
        asyncio.run(_collect(cast(BinaryIO, handle), None))
    assert handle.closed


async def _enumerate(pieces: Any) -> Any:
    index = 0
    async for piece in pieces:
        yield index, piece
        index += 1
