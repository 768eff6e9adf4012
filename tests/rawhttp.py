"""Raw HTTP/1.1 over a socket, for tests that check what is on the wire: headers, chunk
framing, and whether a connection is kept or closed after a response."""

from __future__ import annotations

import socket
import struct


def connect(port: int, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.settimeout(10)
    return sock


class Reader:
    """Reads HTTP/1.1 responses off one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def fill(self) -> bool:
        chunk = self.sock.recv(1 << 20)
        self.buffer += chunk
        return bool(chunk)

    def take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            assert self.fill(), f"closed with {len(self.buffer)} of {size} bytes"
        taken, self.buffer = self.buffer[:size], self.buffer[size:]
        return taken

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            assert self.fill(), f"closed in a line: {self.buffer!r}"
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def response(self, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        status = int(self.line().split()[1])
        headers = {}
        while line := self.line():
            name, value = line.decode().split(":", 1)
            headers[name.lower()] = value.strip()
        if head:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self.line(), 16):
                body += self.take(size)
                assert self.take(2) == b"\r\n"
            assert self.line() == b""
            return status, headers, body
        return status, headers, self.take(int(headers["content-length"]))

    def closed(self) -> bool:
        """Whether the server closed the connection (with nothing more sent)."""
        return not self.buffer and not self.fill()


def request(method: str = "GET", path: str = "/", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reset(sock: socket.socket) -> None:
    """Close with a reset (RST), as a client that goes away mid-response often does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
