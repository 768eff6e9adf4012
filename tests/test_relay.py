"""The relay (``ocireg.relay``) on its own: a body in a socket (here one end of a socket pair,
as S3's would be) copied into a client's socket (another pair), and everything freed however
it ends: never started, stopped while waiting for S3 or for the client, S3 silent past the
read timeout or short, the client gone."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import struct
import threading
import time
import warnings
from pathlib import Path

import pytest

from ocireg.relay import RelayStopped, S3BodyError, ShortBodyError, SocketRelay
from ocireg.storage.socketbody import SocketBody


def _body(
    length: int, head: bytes = b"", read_timeout: float = 10
) -> tuple[SocketBody, socket.socket]:
    """A body of ``length`` bytes whose ``head`` arrived already; the rest is sent by the test
    on the other socket returned."""
    ours, s3 = socket.socketpair()
    ours.setblocking(False)
    return SocketBody(ours, head, length, read_timeout), s3


class Client:
    """A client's socket pair: the relay writes into a duplicate of ``ours`` (non-blocking, as
    uvloop's are), the test reads ``theirs``; ``ended`` is set with the relay's report."""

    def __init__(self) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.ours.setblocking(False)
        self.out = os.dup(self.ours.fileno())
        self.ended = threading.Event()
        self.report: tuple[int, BaseException | None] | None = None

    def done(self, sent: int, error: BaseException | None) -> None:
        self.report = (sent, error)
        self.ended.set()

    def read(self, length: int) -> bytes:
        self.theirs.settimeout(10)
        data = bytearray()
        while len(data) < length and (piece := self.theirs.recv(length - len(data))):
            data += piece
        return bytes(data)

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


def _send_in_background(s3: socket.socket, data: bytes) -> None:
    """S3 sending ``data``; a relay that ends first leaves it a closed peer, which is fine."""

    def send() -> None:
        with contextlib.suppress(OSError):
            s3.sendall(data)

    threading.Thread(target=send, daemon=True).start()


def _open(fd: int) -> bool:
    return Path(f"/proc/self/fd/{fd}").exists()


def test_the_head_then_the_socket_arrive_in_the_clients_socket() -> None:
    body, s3 = _body(10, head=b"0123")
    client = Client()
    SocketRelay(body).start(client.out, client.done)
    s3.sendall(b"456789")
    assert client.read(10) == b"0123456789"
    assert client.ended.wait(5)
    assert client.report == (10, None)
    assert body.sock.fileno() == -1 and not _open(client.out)  # the thread closed both
    s3.close()
    client.close()


def test_a_large_body_arrives_exactly() -> None:
    data = os.urandom(8 << 20)
    body, s3 = _body(len(data))
    client = Client()
    SocketRelay(body).start(client.out, client.done)
    _send_in_background(s3, data)
    assert client.read(len(data)) == data
    assert client.ended.wait(5) and client.report == (len(data), None)
    s3.close()
    client.close()


def test_a_relay_never_started_frees_its_body_and_cannot_start_after() -> None:
    body, s3 = _body(10)
    relay = SocketRelay(body)
    relay.stop()
    assert body.sock.fileno() == -1
    client = Client()
    with pytest.raises(RelayStopped):
        relay.start(client.out, client.done)
    assert _open(client.out)  # still the caller's
    os.close(client.out)
    s3.close()
    client.close()


def test_a_relayed_response_never_called_frees_its_body() -> None:
    with warnings.catch_warnings():  # what the handlers import warns when imported alone
        warnings.simplefilter("ignore")
        from ocireg.handlers.blobs import RelayedResponse
    body, s3 = _body(10)
    response = RelayedResponse(body, 200, {"Content-Length": "10"})
    del response
    gc.collect()
    assert body.sock.fileno() == -1
    s3.close()


def test_s3_silent_past_the_read_timeout_ends_the_relay_with_an_error() -> None:
    body, s3 = _body(10, read_timeout=0.3)
    client = Client()
    started = time.monotonic()
    SocketRelay(body).start(client.out, client.done)
    s3.sendall(b"abc")
    assert client.ended.wait(5)
    assert 0.3 <= time.monotonic() - started < 5
    assert client.report is not None
    sent, error = client.report
    assert (sent, isinstance(error, TimeoutError)) == (3, True)
    assert client.read(3) == b"abc"
    assert body.sock.fileno() == -1 and not _open(client.out)
    s3.close()
    client.close()


def test_a_body_that_ends_short_is_an_error() -> None:
    body, s3 = _body(10)
    client = Client()
    SocketRelay(body).start(client.out, client.done)
    s3.sendall(b"abcd")
    s3.close()  # S3 ends the answer early
    assert client.ended.wait(5) and client.report is not None
    assert client.report[0] == 4 and isinstance(client.report[1], ShortBodyError)
    client.close()


def test_stopping_wakes_a_relay_waiting_for_s3() -> None:
    body, s3 = _body(10)
    client = Client()
    relay = SocketRelay(body)
    relay.start(client.out, client.done)
    time.sleep(0.1)  # in poll, waiting for S3
    started = time.monotonic()
    relay.stop()
    assert client.ended.wait(2), "the relay outlived its stop"
    assert time.monotonic() - started < 2
    assert client.report is not None and isinstance(client.report[1], RelayStopped)
    assert body.sock.fileno() == -1 and not _open(client.out)
    s3.close()
    client.close()


def test_stopping_wakes_a_relay_waiting_for_a_client_that_does_not_read() -> None:
    data = os.urandom(32 << 20)
    body, s3 = _body(len(data))
    client = Client()  # never reads: its socket fills
    relay = SocketRelay(body)
    relay.start(client.out, client.done)
    _send_in_background(s3, data)
    time.sleep(0.5)
    assert not client.ended.is_set()
    started = time.monotonic()
    relay.stop()
    assert client.ended.wait(2), "the relay outlived its stop"
    assert time.monotonic() - started < 2
    assert client.report is not None
    sent, error = client.report
    assert 0 < sent < len(data) and isinstance(error, RelayStopped)
    assert body.sock.fileno() == -1 and not _open(client.out)
    s3.close()
    client.close()


def test_a_client_gone_ends_the_relay_at_once() -> None:
    data = os.urandom(32 << 20)
    body, s3 = _body(len(data))
    client = Client()
    relay = SocketRelay(body)
    relay.start(client.out, client.done)
    _send_in_background(s3, data)
    assert client.read(1 << 20) == data[: 1 << 20]
    client.close()  # the client goes away mid-body
    assert client.ended.wait(2), "the relay outlived its client"
    assert client.report is not None
    sent, error = client.report
    assert sent < len(data) and isinstance(error, (BrokenPipeError, ConnectionResetError))
    assert body.sock.fileno() == -1
    s3.close()


def test_an_s3_connection_reset_is_s3s_failure_not_a_client_gone() -> None:
    """S3 resets its connection mid-body: an ``S3BodyError`` with no errno of its own, so the
    connection's send cannot take it for the client leaving (whose errnos it is told by)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname())
        s3, _ = listener.accept()
    ours.setblocking(False)
    body = SocketBody(ours, b"", 1 << 20, 10)
    client = Client()
    SocketRelay(body).start(client.out, client.done)
    s3.sendall(b"x" * 1000)
    assert client.read(1000) == b"x" * 1000
    s3.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s3.close()  # a reset, not an end
    assert client.ended.wait(5) and client.report is not None
    sent, error = client.report
    assert sent == 1000 and type(error) is S3BodyError
    assert error.errno is None and isinstance(error.__cause__, ConnectionResetError)
    client.close()


def test_a_relay_counts_what_it_sent_as_it_goes() -> None:
    """``sent`` grows with each write, for a response cut off before the thread reports."""
    data = os.urandom(32 << 20)
    body, s3 = _body(len(data))
    client = Client()  # reads a little, then nothing
    relay = SocketRelay(body)
    relay.start(client.out, client.done)
    _send_in_background(s3, data)
    assert client.read(1 << 20) == data[: 1 << 20]
    deadline = time.monotonic() + 5
    while relay.sent < 1 << 20:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    relay.stop()
    assert client.ended.wait(2) and client.report is not None
    assert client.report[0] == relay.sent >= 1 << 20
    s3.close()
    client.close()
