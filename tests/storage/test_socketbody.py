"""A GetObject's body left in a socket of our own (``ocireg.storage.socketbody``, reached
through ``S3Driver.socket_body``), against moto: the bytes that arrived with the answer's head
and those still in the socket make exactly the range asked for; every answer that is not a
plain body of that length is None, and the usual path answers instead."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from ocireg.storage import s3, s3small
from ocireg.storage.driver import PathNotFoundError
from ocireg.storage.s3 import S3Driver
from ocireg.storage.socketbody import SocketBody, open_body
from tests.s3server import S3Endpoint, s3_endpoint
from tests.storage.test_s3 import make_driver
from tests.storage.test_s3small import _sent, checked_driver, checking_endpoint

__all__ = ["checking_endpoint", "s3_endpoint"]  # fixtures, used here by name


def read_all(body: SocketBody) -> bytes:
    """The whole body, as the relay sees it: the head's bytes, then the socket's."""
    body.sock.settimeout(30)  # left non-blocking, for the relay's poll
    try:
        data = bytearray(body.head)
        while len(data) < body.length:
            piece = body.sock.recv(min(1 << 20, body.length - len(data)))
            assert piece, f"the body ended after {len(data)} of {body.length} bytes"
            data += piece
        return bytes(data)
    finally:
        body.close()


@pytest.fixture
def driver(s3_endpoint: S3Endpoint) -> S3Driver:
    return make_driver(s3_endpoint)


def test_a_whole_object_and_a_range_come_exact(driver: S3Driver) -> None:
    data = os.urandom(3 << 20)
    driver.put_content("a/blob", data)
    whole = driver.socket_body("a/blob", 0, len(data))
    assert whole is not None
    assert read_all(whole) == data
    middle = driver.socket_body("a/blob", 1000, 2 << 20)
    assert middle is not None
    assert read_all(middle) == data[1000 : 1000 + (2 << 20)]


def test_a_relayed_body_waits_for_s3_as_long_as_any_answer_does(driver: S3Driver) -> None:
    """S3 silent in the middle of a relayed body ends the pull after the wait any answer's
    next byte gets (30 s), not the 300 s a copy's answer may need."""
    driver.put_content("a/blob", os.urandom(1 << 20))
    body = driver.socket_body("a/blob", 0, 1 << 20)
    assert body is not None
    try:
        assert body.read_timeout == s3.QUICK_READ_TIMEOUT == 30
    finally:
        body.close()


def test_what_is_not_a_plain_body_of_that_length_is_none(driver: S3Driver) -> None:
    driver.put_content("a/blob", b"0123456789")
    assert driver.socket_body("a/missing", 0, 10) is None  # 404: the reader says "not found"
    with pytest.raises(PathNotFoundError):
        driver.reader("a/missing")
    assert driver.socket_body("a/blob", 20, 5) is None  # 416, beyond the end
    assert driver.socket_body("a/blob", 0, 11) is None  # shorter than promised
    assert driver.socket_body("a/blob", 0, 0) is None


def test_an_https_endpoint_keeps_the_usual_path(s3_endpoint: S3Endpoint) -> None:
    """The relay reads the socket itself, which TLS would need botocore's layers for: no
    socket body, and nothing is sent."""
    tls = S3Driver(
        bucket="never-asked",
        regionendpoint=s3_endpoint.url.replace("http://", "https://"),
        region="us-east-1",
        accesskey="key",
        secretkey="secret",
    )
    tls.client.meta.events.register("before-send.s3", _refuse_sending)
    assert tls.socket_body("a/blob", 0, 10) is None


def _refuse_sending(**_: object) -> None:
    raise AssertionError("a request was sent")


def test_an_endpoint_that_checks_signatures_accepts_the_get_and_refuses_a_wrong_one(
    checking_endpoint: tuple[str, str, str],
) -> None:
    data = os.urandom(1 << 20)
    driver = checked_driver(checking_endpoint)
    driver.put_content("team/app/blob", data)
    body = driver.socket_body("team/app/blob", 5, len(data) - 5)
    assert body is not None
    assert read_all(body) == data[5:]
    wrong = checked_driver(checking_endpoint, secret="not-the-secret")
    assert wrong.socket_body("team/app/blob", 0, len(data)) is None  # 403: the usual path...
    with pytest.raises(ClientError) as refused:
        wrong.reader("team/app/blob")
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"  # ...raises it


def test_refused_gets_count_towards_turning_the_hand_made_path_off(
    checking_endpoint: tuple[str, str, str],
) -> None:
    """A 403 to the relayed GetObject counts as the other hand-made requests' refusals do:
    ``REFUSALS_OFF`` in a row turn the hand-made path off (botocore alone asks then)."""
    checked_driver(checking_endpoint).put_content("team/app/blob", b"x" * 100)
    wrong = checked_driver(checking_endpoint, secret="not-the-secret")
    small = wrong._small
    assert small is not None
    for _ in range(s3small.REFUSALS_OFF - 1):
        assert wrong.socket_body("team/app/blob", 0, 100) is None
    assert small.enabled
    assert wrong.socket_body("team/app/blob", 0, 100) is None
    assert not small.enabled
    sent = _sent(wrong)
    assert wrong.socket_body("team/app/blob", 0, 100) is None  # off: nothing sent by hand
    assert sent == []


@pytest.mark.parametrize(
    ("status", "content_range", "taken"),
    [
        ("206 Partial Content", "bytes 5-14/100", True),
        ("206 Partial Content", "bytes 0-9/100", False),  # another range of that length
        ("206 Partial Content", None, False),
        ("200 OK", None, False),  # the whole object is not bytes 5-14
    ],
)
def test_an_answer_to_another_range_is_not_taken(
    status: str, content_range: str | None, taken: bool
) -> None:
    """The body taken is the range asked for, not merely one of its length."""
    extra = f"Content-Range: {content_range}\r\n" if content_range else ""
    answer = f"HTTP/1.1 {status}\r\nContent-Length: 10\r\n{extra}\r\n0123456789".encode()
    with _answering(answer) as url:
        body = open_body(url, {"Range": "bytes=5-14"}, 10, 5, 5)
    assert isinstance(body, SocketBody) is taken
    if isinstance(body, SocketBody):
        assert read_all(body) == b"0123456789"


@contextlib.contextmanager
def _answering(answer: bytes) -> Iterator[str]:
    """A server at the URL yielded that answers one request with ``answer``."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            client, _ = listener.accept()
            with client:
                client.recv(1 << 16)
                client.sendall(answer)
                client.recv(1)  # until the other end closes

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/bucket/key"
        thread.join(5)
