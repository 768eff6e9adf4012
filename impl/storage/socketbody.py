"""An HTTP GET on a plain-TCP connection of our own, whose answer's body is left in the socket.

Why: a blob pulled from an S3 endpoint over plain HTTP (moto here, MinIO or Ceph on a LAN)
is copied from that socket into the client's by one thread (``ocireg.relay``): one buffer, no
hop through the event loop per piece, no layers between. For that the body must still be in a
socket we own: botocore's pool would want the connection back, and its layers (urllib3,
``http.client``) buffer and copy what they read. So the request is written by hand (signed by
the caller), and the answer's head is read and parsed here; what arrived with the head, past
its end, is handed over with the socket (``SocketBody.head``).

Only a plain answer qualifies: 200 or 206 with a ``Content-Length`` equal to the length
asked for, a 206's ``Content-Range`` the range asked for (a 200 only to a range from byte
0: the whole object is then that range), no content coding, no chunked transfer. Anything
else is closed: an answer with another status is that status (an ``int``: the caller
counts refusals, as its other hand-made requests do), one that is not a plain body
:data:`None`; either way the caller makes the request its usual way, which maps errors as
it always did. The connection is never reused: the caller closes it when the body is done.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_HEAD_MOST = 64 << 10  # an S3 answer's head is under 2 KiB; past this, not a plain answer
_RECEIVE = 16 << 10


@dataclass
class SocketBody:
    """``length`` bytes of an answer's body: ``head`` first (read with the answer's head),
    then the rest, still in ``sock``. Non-blocking socket: a reader waits for it with ``poll``
    and gives up after ``read_timeout`` seconds without a byte; :meth:`interrupt` wakes such
    a wait from another thread (``ocireg.relay``)."""

    sock: socket.socket
    head: bytes
    length: int
    read_timeout: float = 300.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        with self._lock:  # never a shutdown of a number that a close just freed
            self.sock.close()

    def interrupt(self) -> None:
        """Wake a thread blocked reading the socket (it reads the end); from any thread."""
        with self._lock:
            if self.sock.fileno() >= 0:
                with contextlib.suppress(OSError):  # not connected: nothing to wake
                    self.sock.shutdown(socket.SHUT_RDWR)


def plain_http(url: str) -> bool:
    return urlsplit(url).scheme == "http"


def open_body(
    url: str,
    headers: dict[str, str],
    length: int,
    connect_timeout: float,
    read_timeout: float,
) -> SocketBody | int | None:
    """GET ``url`` (``http://`` only) with ``headers`` on a new connection; its body when the
    answer is a plain 200/206 of exactly ``length`` bytes (those of the ``Range`` in
    ``headers``, if any), the status of an answer that is
    neither 200 nor 206, else None (connection closed but for a body). Connection errors
    raise ``OSError``."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        return None
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=connect_timeout)
    try:
        sock.settimeout(read_timeout)
        lines = [f"GET {target} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("Connection: close")  # never reused: the body is taken from the socket
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        body = _body(sock, length, headers.get("Range"), read_timeout)
    except BaseException:
        sock.close()
        raise
    if not isinstance(body, SocketBody):
        sock.close()
        return body
    sock.setblocking(False)  # read after a poll, which interrupt() can wake (see above)
    return body


def _body(
    sock: socket.socket, length: int, wanted: str | None, read_timeout: float
) -> SocketBody | int | None:
    received = bytearray()
    while (end := received.find(b"\r\n\r\n")) < 0:
        if len(received) > _HEAD_MOST:
            return None
        piece = sock.recv(_RECEIVE)
        if not piece:
            return None
        received += piece
    status_line, _, header_block = bytes(received[:end]).partition(b"\r\n")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return None
    if parts[1] not in (b"200", b"206"):
        return int(parts[1])
    message = http.client.parse_headers(io.BytesIO(header_block + b"\r\n\r\n"))
    coding = (message.get("Content-Encoding") or "identity").strip().lower()
    if message.get("Transfer-Encoding") or coding not in ("", "identity"):
        return None
    if message.get("Content-Length") != str(length):
        return None
    if not _the_range_asked(parts[1], message.get("Content-Range"), wanted):
        return None
    head = bytes(received[end + 4 :])
    if len(head) > length:
        return None  # more than the answer holds: not an answer to trust
    return SocketBody(sock, head, length, read_timeout)


def _the_range_asked(status: bytes, content_range: str | None, wanted: str | None) -> bool:
    """Whether an answer of ``status`` with ``content_range`` holds the bytes of the ``Range``
    asked for (``bytes=FIRST-LAST``): a 206 says so; a 200 (the whole object) does when the
    range starts at 0 (the length was checked); with no range asked, only a 200 does."""
    if wanted is None:
        return status == b"200"
    first, _, last = wanted.removeprefix("bytes=").partition("-")
    if status == b"200":
        return first == "0"
    said, _, _total = (content_range or "").strip().partition("/")
    return said == f"bytes {first}-{last}"
