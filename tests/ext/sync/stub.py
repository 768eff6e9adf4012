"""A tiny upstream registry in this process that is watched and steered: it serves one image
(``repo:v1``, a config and some layers), counts the requests it has in flight and notes when each
one started, and can stall a blob's body half-way for a while (a slow upstream). It ignores a
blob request's ``Range`` (answers 200, as some upstreams do) unless told to honour it (206)."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ocireg.registry.mediatypes import OCI_MANIFEST
from tests.liveserver import free_port

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Stub:
    url: str
    manifest: bytes
    blobs: dict[str, bytes]
    hold: float = 0.0  # seconds each blob answer takes before its body
    stall: float = 0.0  # seconds a blob's body stops half-way
    stall_once: bool = False  # only the next blob body stalls
    ranges: bool = False  # honour a blob request's Range (206) instead of ignoring it (200)
    from_zero: bool = False  # a broken upstream: a Range is answered 206 from byte 0
    ahead: int = 0  # a broken upstream: a Range is answered 206 from this many bytes past it
    asked: list[tuple[str, int]] = field(default_factory=list)  # each blob request's Range, status
    in_flight: int = 0
    most_in_flight: int = 0
    starts: list[tuple[float, str]] = field(default_factory=list)  # monotonic time, path
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def layers(self) -> list[str]:
        return [layer["digest"] for layer in json.loads(self.manifest)["layers"]]


def _image(layers: int, layer_size: int, varied: bool) -> tuple[bytes, dict[str, bytes]]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    if varied:  # no two blocks alike: a block served in place of another shows
        contents = [random.Random(n).randbytes(layer_size) for n in range(layers)]
    else:
        contents = [bytes([n]) * layer_size for n in range(layers)]
    blobs = {_digest(data): data for data in [config, *contents]}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
        "layers": [
            {"mediaType": OCI_LAYER, "digest": _digest(data), "size": len(data)}
            for data in contents
        ],
    }
    return json.dumps(manifest).encode(), blobs


@contextmanager
def stub_upstream(layers: int = 1, layer_size: int = 4096, varied: bool = False) -> Iterator[Stub]:
    manifest, blobs = _image(layers, layer_size, varied)
    port = free_port()
    stub = Stub(f"http://127.0.0.1:{port}", manifest, blobs)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _answer(
            self, status: int, body: bytes, media_type: str, content_range: str = ""
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            if content_range:
                self.send_header("Content-Range", content_range)
            self.end_headers()
            if self.command == "GET":
                self._body(body)

        def _body(self, body: bytes) -> None:
            if stub.stall and "/blobs/" in self.path:
                stall = stub.stall
                if stub.stall_once:
                    stub.stall, stub.stall_once = 0.0, False
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                time.sleep(stall)
                body = body[half:]
            self.wfile.write(body)

        def _serve(self) -> None:
            with stub.lock:
                stub.starts.append((time.monotonic(), self.path))
                stub.in_flight += 1
                stub.most_in_flight = max(stub.most_in_flight, stub.in_flight)
            try:
                self._route()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with stub.lock:
                    stub.in_flight -= 1

        def _route(self) -> None:
            parts = self.path.split("?")[0].split("/")
            if self.path.startswith("/v2/repo/manifests/"):
                self._answer(200, stub.manifest, OCI_MANIFEST)
            elif self.path.startswith("/v2/repo/blobs/") and parts[-1] in stub.blobs:
                time.sleep(stub.hold)
                self._blob(stub.blobs[parts[-1]])
            else:
                self._answer(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', "application/json")

        def _blob(self, blob: bytes) -> None:
            asked = self.headers.get("Range", "")
            start = asked.removeprefix("bytes=").split("-")[0]
            if stub.ranges and start.isdigit() and int(start) >= len(blob):
                with stub.lock:  # as ocireg and docker-registry 2.8 answer (measured)
                    stub.asked.append((asked, 416))
                self._answer(416, b"", "text/plain", f"bytes */{len(blob)}")
                return
            if stub.ranges and asked.startswith("bytes=") and start.isdigit():
                first = 0 if stub.from_zero else int(start) + stub.ahead
                with stub.lock:
                    stub.asked.append((asked, 206))
                where = f"bytes {first}-{len(blob) - 1}/{len(blob)}"
                self._answer(206, blob[first:], "application/octet-stream", where)
                return
            with stub.lock:
                stub.asked.append((asked, 200))
            self._answer(200, blob, "application/octet-stream")

        do_GET = do_HEAD = _serve

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
