"""The splice pump (``ocireg.splicepump``) on its own: a body in a socket (here one end of a
socket pair, as S3's would be) moved into the pipe, and everything freed however it ends:
never started, stopped, or S3 silent past the read timeout."""

from __future__ import annotations

import gc
import os
import socket
import time
import warnings
from pathlib import Path

import pytest

from ocireg.splicepump import SplicePump
from ocireg.storage.socketbody import SocketBody

pytestmark = pytest.mark.skipif(not hasattr(os, "splice"), reason="os.splice is Linux's")


def _body(
    length: int, head: bytes = b"", read_timeout: float = 10
) -> tuple[SocketBody, socket.socket]:
    """A body of ``length`` bytes whose ``head`` arrived already; the rest is sent by the test
    on the other socket returned."""
    ours, s3 = socket.socketpair()
    ours.setblocking(False)
    return SocketBody(ours, head, length, read_timeout), s3


def _open(fd: int) -> bool:
    return Path(f"/proc/self/fd/{fd}").exists()


def _read(pipe: int, length: int) -> bytes:
    data = bytearray()
    ends = time.monotonic() + 10
    while len(data) < length and time.monotonic() < ends:
        try:
            piece = os.read(pipe, length - len(data))
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if not piece:
            break
        data += piece
    return bytes(data)


def test_the_head_then_the_socket_arrive_in_the_pipe() -> None:
    body, s3 = _body(10, head=b"0123")
    pump = SplicePump()
    pump.take(body)
    pump.start()
    s3.sendall(b"456789")
    assert _read(pump.fd, 10) == b"0123456789"
    pump.stop()
    s3.close()
    assert pump.error is None


def test_a_pump_never_started_frees_its_pipe_and_body() -> None:
    body, s3 = _body(10)
    pump = SplicePump()
    read_end, write_end = pump.fd, pump._write_fd
    pump.stop()
    assert not _open(read_end) and not _open(write_end)
    SplicePump().stop()  # no body at all
    pump = SplicePump()
    pump.take(body)  # as when the thread cannot start
    pump.stop()
    assert body.sock.fileno() == -1
    s3.close()


def test_a_spliced_response_never_called_frees_its_pipe_and_body() -> None:
    with warnings.catch_warnings():  # what the handlers import warns when imported alone
        warnings.simplefilter("ignore")
        from ocireg.handlers.blobs import SplicedResponse
    body, s3 = _body(10)
    pump = SplicePump()
    read_end = pump.fd
    response = SplicedResponse(body, pump, 200, {"Content-Length": "10"})
    del response
    gc.collect()
    assert not _open(read_end)
    assert body.sock.fileno() == -1
    s3.close()


def test_s3_silent_past_the_read_timeout_ends_the_pump_with_an_error() -> None:
    body, s3 = _body(10, read_timeout=0.3)
    pump = SplicePump()
    pump.take(body)
    pump.start()
    s3.sendall(b"abc")
    started = time.monotonic()
    assert _read(pump.fd, 10) == b"abc"  # then the end of the pipe: the writer closed
    assert 0.3 <= time.monotonic() - started < 5
    assert isinstance(pump.error, TimeoutError)
    assert body.sock.fileno() == -1
    pump.stop()
    s3.close()


def test_stopping_wakes_a_pump_waiting_for_s3() -> None:
    body, s3 = _body(10)
    pump = SplicePump()
    pump.take(body)
    pump.start()
    time.sleep(0.1)  # in poll, waiting for S3
    started = time.monotonic()
    pump.stop()
    while body.sock.fileno() != -1:
        assert time.monotonic() - started < 2, "the pump outlived its stop"
        time.sleep(0.01)
    assert pump.error is None
    s3.close()
