"""A CloudEvents HTTP receiver on loopback for the events tests: it records every delivery,
and can require Basic credentials, a bearer token or a client certificate, answer slowly,
refuse, or be stopped and started again on the same port."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.liveserver import free_port


@dataclass
class Received:
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer_cert: dict[str, Any] | None = None

    @property
    def data(self) -> Any:
        return json.loads(self.body)

    @property
    def type(self) -> str:
        return self.headers.get("ce-type", "")

    @property
    def id(self) -> str:
        return self.headers.get("ce-id", "")


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    authorization: str | None = None  # the exact Authorization header demanded
    tls: ssl.SSLContext | None = None
    delay: float = 0.0
    status: int = 200
    gate: threading.Event | None = None  # when given, each request waits until it is set
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/events"

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if owner.delay:
                    time.sleep(owner.delay)
                if owner.gate is not None:
                    owner.gate.wait()
                wanted = owner.authorization
                if wanted is not None and self.headers.get("authorization") != wanted:
                    with owner._lock:
                        owner.refused += 1
                    self._answer(401)
                    return
                if owner.status >= 300:
                    self._answer(owner.status)
                    return
                peer = None
                if isinstance(self.connection, ssl.SSLSocket):
                    peer = self.connection.getpeercert()
                headers = {name.lower(): value for name, value in self.headers.items()}
                with owner._lock:
                    owner.received.append(Received(headers, body, peer))
                self._answer(202)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, type: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if type is None or r.type == type]

    def wait_for(
        self, check: Callable[[list[Received]], bool], timeout: float = 20.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.events()
            if check(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"receiver: condition not met in {timeout}s; got {self.events()}")
