"""A proxy in front of an upstream that misbehaves on request: answers with errors, or cuts a
blob's body in the middle (as an upstream killed mid-blob does)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.liveserver import free_port

HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-encoding"}


@dataclass
class Faults:
    """What the proxy does next: ``statuses`` answered (in order) to requests whose path
    contains ``where`` instead of forwarding them; ``cut_after`` bytes of the next blob body
    larger than that, then the connection closes; ``seen`` is every request line."""

    statuses: list[int] = field(default_factory=list)
    where: str = "/v2/"
    cut_after: int | None = None
    cuts: int = 0
    garbage: str | None = None  # requests whose path contains it get 200 and a body of junk
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, Range
    answered: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def faulty_proxy(upstream: str) -> Iterator[tuple[str, Faults]]:
    faults = Faults()
    client = httpx.Client(base_url=upstream, timeout=60)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            with faults.lock:
                faults.seen.append((self.command, self.path, self.headers.get("Range", "")))
                status = (
                    faults.statuses.pop(0)
                    if faults.statuses and faults.where in self.path
                    else None
                )
                junk = faults.garbage is not None and faults.garbage in self.path
            if junk:
                body = b"{not json"
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if status is not None:
                body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(body)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            request = client.build_request(self.command, self.path, headers=headers, content=body)
            answer = client.send(request, stream=True)
            try:
                with faults.lock:
                    faults.answered.append((self.command, self.path, answer.status_code))
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.end_headers()
                if self.command == "HEAD":
                    return
                sent = 0
                cut = faults.cut_after if "/blobs/" in self.path else None
                if cut is not None and int(answer.headers.get("content-length", 0)) <= cut:
                    cut = None
                for chunk in answer.iter_raw(65536):
                    if cut is not None and sent + len(chunk) > cut:
                        self.wfile.write(chunk[: cut - sent])
                        self.wfile.flush()
                        with faults.lock:
                            faults.cut_after = None
                            faults.cuts += 1
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    self.wfile.write(chunk)
                    sent += len(chunk)
            finally:
                answer.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", faults
    finally:
        server.shutdown()
        server.server_close()
        client.close()
