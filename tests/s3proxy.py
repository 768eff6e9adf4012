"""A TCP proxy in front of an S3 endpoint that can stall the answer to the GetObject ocireg
relays (the one request it sends with ``Connection: close``): it forwards ``stall_after``
bytes of that answer (0: not even its head), then nothing more, the connection held open
until the proxy closes. With ``vanished`` set, every GET of a blob's content is answered 404
``NoSuchKey`` (the blob deleted since it was found). While ``silent`` is set, every request is
swallowed: S3 never answers it (a pooled connection dropped by a middlebox, an endpoint hung);
``swallowed`` counts them. Every other exchange passes untouched."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from urllib.parse import urlsplit

_PIECE = 64 << 10


class StallingProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.stall_after: int | None = None  # None: pass everything
        self.stalled = threading.Event()  # set once an answer has stalled
        self.vanished = False
        self.silent = threading.Event()
        self.swallowed = 0
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> StallingProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        for each in list(self._sockets):
            each.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self._upstream)
                self._sockets += [client, upstream]
                relayed = threading.Event()  # the request asked for Connection: close
                threading.Thread(
                    target=self._requests, args=(client, upstream, relayed), daemon=True
                ).start()
                threading.Thread(
                    target=self._answers, args=(upstream, client, relayed), daemon=True
                ).start()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, relayed: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while piece := client.recv(_PIECE):
                if b"\r\nConnection: close\r\n" in piece:
                    relayed.set()
                if self.silent.is_set():
                    self.swallowed += 1
                    continue
                if self.vanished and _blob_get(piece):
                    client.sendall(_NO_SUCH_KEY)
                    continue
                upstream.sendall(piece)
            upstream.shutdown(socket.SHUT_WR)

    def _answers(
        self, upstream: socket.socket, client: socket.socket, relayed: threading.Event
    ) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            while piece := upstream.recv(_PIECE):
                limit = self.stall_after
                if relayed.is_set() and limit is not None and sent + len(piece) >= limit:
                    client.sendall(piece[: limit - sent])
                    self.stalled.set()
                    self._closing.wait()
                    return
                client.sendall(piece)
                sent += len(piece)
            client.shutdown(socket.SHUT_WR)


def _blob_get(request: bytes) -> bool:
    line = request.split(b"\r\n", 1)[0]
    return line.startswith(b"GET ") and b"/blobs/" in line


_MISSING = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
_NO_SUCH_KEY = (
    b"HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_MISSING), _MISSING)
)
