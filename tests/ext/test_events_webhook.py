"""The lean webhook client (ext/events/webhook.py) against real loopback servers that answer
in the ways HTTP/1.1 allows: kept-alive, closing, chunked, close-delimited, interim 100."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable

import pytest

from ocireg.ext.events.webhook import MAX_BODY, ResponseError, Webhook

Answer = Callable[[bytes, int], bytes | None]  # (request head, number) -> raw answer; None: close


async def serve(
    answer: Answer, requests: list[bytes], connections: list[asyncio.Task[None]]
) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.append(task)  # type: ignore[arg-type]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                requests.append(head + body)
                raw = answer(head, len(requests))
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if raw.startswith(b"HTTP/1.0") or b"Connection: close" in raw:
                    break  # as it says: the connection ends with this answer
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def run(
    answer: Answer, scenario: Callable[[Webhook], Awaitable[list[int]]]
) -> tuple[list[int], list[bytes], int]:
    requests: list[bytes] = []
    connections: list[asyncio.Task[None]] = []

    async def main() -> list[int]:
        server = await serve(answer, requests, connections)
        port = server.sockets[0].getsockname()[1]
        webhook = Webhook(f"http://127.0.0.1:{port}/hook?x=1", {"X-Extra": "yes"}, None,
                          basic=("u", "p"))  # fmt: skip
        try:
            return await scenario(webhook)
        finally:
            await webhook.close()
            server.close()
            await asyncio.wait_for(asyncio.gather(*connections), 5)  # each closed its side

    statuses = asyncio.run(main())
    return statuses, requests, len(connections)


async def three_posts(webhook: Webhook) -> list[int]:
    return [await webhook.post(b'{"n": %d}' % n, {"ce-id": str(n)}) for n in range(3)]


def test_posts_reuse_one_kept_alive_connection_and_send_every_header() -> None:
    statuses, requests, connections = run(
        lambda _head, _n: b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok", three_posts
    )
    assert statuses == [202, 202, 202]
    assert connections == 1
    first = requests[0].decode()
    assert first.startswith("POST /hook?x=1 HTTP/1.1\r\n")
    assert "Authorization: Basic dTpw\r\n" in first  # u:p
    assert "X-Extra: yes\r\n" in first and "ce-id: 0\r\n" in first
    assert first.endswith('\r\n\r\n{"n": 0}')


def test_a_kept_alive_connection_the_receiver_closed_is_replaced_before_failing() -> None:
    def answer(_head: bytes, number: int) -> bytes | None:
        # the second request finds its connection closed without an answer
        return None if number == 2 else b"HTTP/1.1 204 No Content\r\n\r\n"

    statuses, requests, connections = run(answer, three_posts)
    assert statuses == [204, 204, 204]
    assert len(requests) == 4 and connections == 2  # the second was sent again, once


def test_chunked_close_delimited_and_interim_answers_are_read_to_their_end() -> None:
    answers = {
        1: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n",
        2: b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        3: b"HTTP/1.0 500 Oops\r\n\r\nbody to the end",
    }

    async def scenario(webhook: Webhook) -> list[int]:
        statuses = await three_posts(webhook)
        with pytest.raises((ResponseError, OSError)):
            await webhook.post(b"{}", {})  # the 500's connection ended; a new one gets nothing
        return statuses

    statuses, _requests, connections = run(lambda _head, number: answers.get(number), scenario)
    assert statuses == [200, 201, 500]
    assert connections >= 3  # "close" and a close-delimited body end their connections


def test_user_info_in_the_url_is_sent_as_basic_credentials() -> None:
    requests: list[bytes] = []

    async def main() -> int:
        server = await serve(lambda _h, _n: b"HTTP/1.1 204 No Content\r\n\r\n", requests, [])
        port = server.sockets[0].getsockname()[1]
        webhook = Webhook(f"http://a%40b:p%3A@127.0.0.1:{port}/", {}, None)
        try:
            return await webhook.post(b"{}", {})
        finally:
            await webhook.close()
            server.close()

    assert asyncio.run(main()) == 204
    head = requests[0].decode()
    assert "Authorization: Basic YUBiOnA6\r\n" in head  # a@b:p:
    assert "Host: 127.0.0.1:" in head and "@" not in head.split("Host: ")[1].split("\r\n")[0]


def test_an_answer_that_is_not_http_is_an_error() -> None:
    async def one(webhook: Webhook) -> list[int]:
        with pytest.raises(ResponseError):
            await webhook.post(b"{}", {})
        return []

    run(lambda _head, _n: b"SSH-2.0-nope\r\n\r\n", one)


def test_https_without_tls_settings_verifies_against_certifi_as_httpx_did() -> None:
    certifi = pytest.importorskip("certifi")
    webhook = Webhook("https://hooks.example.test/", {}, None)
    assert webhook.tls is not None and webhook.tls.verify_mode == ssl.CERT_REQUIRED
    expected = ssl.create_default_context(cafile=certifi.where()).get_ca_certs()
    assert expected and webhook.tls.get_ca_certs() == expected


def test_a_kept_alive_connection_reset_before_the_next_write_is_replaced() -> None:
    """The receiver resets (RST) an idle kept-alive connection: the next request fails on its
    write, not its read, and is sent once more on a new connection."""
    requests: list[bytes] = []
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n")[0])
        requests.append(head + await reader.readexactly(length))
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        if len(handlers) == 1:  # kept alive, then reset: SO_LINGER 0 sends RST on close
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            writer.transport.abort()
            return
        await reader.read()  # until the client closes its side
        writer.close()

    async def main() -> list[int]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        webhook = Webhook(f"http://127.0.0.1:{port}/", {}, None)
        try:
            first = await webhook.post(b"{}", {})
            await asyncio.sleep(0.2)  # the client's loop sees the reset on the idle connection
            return [first, await webhook.post(b"{}", {})]
        finally:
            await webhook.close()
            server.close()
            await asyncio.wait_for(asyncio.gather(*handlers), 5)

    assert asyncio.run(main()) == [204, 204]
    assert len(requests) == 2 and len(handlers) == 2  # sent again, once, on a new connection


def chunked(body: bytes, size: int) -> bytes:
    pieces = [body[at : at + size] for at in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def framed(framing: str, body: bytes) -> bytes:
    if framing == "content-length":
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    if framing == "one chunk":
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, len(body))
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body, 16 * 1024)


FRAMINGS = ["content-length", "one chunk", "many chunks"]


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_body_under_the_cap_is_drained_and_its_connection_kept(framing: str) -> None:
    body = b"x" * (MAX_BODY // 2)
    statuses, requests, connections = run(lambda _h, _n: framed(framing, body), three_posts)
    assert statuses == [200, 200, 200]
    assert len(requests) == 3 and connections == 1


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_body_over_the_cap_closes_its_connection_rather_than_be_read(framing: str) -> None:
    body = b"x" * (2 * MAX_BODY)
    statuses, requests, connections = run(lambda _h, _n: framed(framing, body), three_posts)
    assert statuses == [200, 200, 200]
    assert len(requests) == 3 and connections == 3  # each answer's connection was closed


def test_a_close_delimited_body_over_the_cap_is_not_read_to_its_end() -> None:
    async def one(webhook: Webhook) -> list[int]:
        return [await asyncio.wait_for(webhook.post(b"{}", {}), 10)]

    # no length: the body runs to the connection's end, which this receiver never reaches
    # (it waits for another request): only a client that stops at the cap gets its status
    raw = b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (2 * MAX_BODY)
    statuses, _requests, connections = run(lambda _h, _n: raw, one)
    assert statuses == [200] and connections == 1


def test_a_negative_content_length_is_an_error() -> None:
    async def one(webhook: Webhook) -> list[int]:
        with pytest.raises(ResponseError):
            await webhook.post(b"{}", {})
        return []

    run(lambda _h, _n: b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", one)


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X-A": "b\r\nX-Injected: 1"}, "the value of header 'X-A' holds a CR, LF or NUL"),
        ({"X-A": "b\nc"}, "holds a CR, LF or NUL"),
        ({"X A": "b"}, "the header name 'X A' is not an HTTP token"),
    ],
)
def test_configured_headers_that_would_split_the_request_are_refused_at_setup(
    headers: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Webhook("http://127.0.0.1:9/", headers, None)


def test_an_attribute_with_a_line_break_is_refused_and_nothing_is_sent() -> None:
    async def scenario(webhook: Webhook) -> list[int]:
        with pytest.raises(ValueError, match="'ce-subject' holds a CR, LF or NUL"):
            await webhook.post(b"{}", {"ce-subject": "a\r\nX-Injected: 1"})
        return [await webhook.post(b"{}", {"ce-subject": "a"})]  # the client goes on

    statuses, requests, _connections = run(lambda _h, _n: b"HTTP/1.1 204 No Content\r\n\r\n",
                                           scenario)  # fmt: skip
    assert statuses == [204]
    assert len(requests) == 1 and b"X-Injected" not in requests[0]
