"""A small streaming round-robin HTTP proxy: each request goes to the next instance in turn,
bodies stream both ways. In front of instances that share a bucket and a database, an upload
session's requests land on different instances, as behind any load balancer."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from tests.liveserver import free_port

# connection-level headers, never forwarded (RFC 9110 §7.6.1), and Host (the target's own)
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host",
}  # fmt: skip


class RoundRobin:
    def __init__(self, targets: list[str]) -> None:
        self.targets = itertools.cycle(targets)
        self.client = httpx.AsyncClient(timeout=300)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        target = next(self.targets)
        upstream = self.client.build_request(
            request.method,
            target + request.url.path,
            params=request.url.query,
            headers=[(k, v) for k, v in request.headers.items() if k not in HOP_BY_HOP],
            content=request.stream(),
        )
        answer = await self.client.send(upstream, stream=True)
        headers = {k: v for k, v in answer.headers.items() if k not in HOP_BY_HOP}
        response = StreamingResponse(
            answer.aiter_raw(),
            answer.status_code,
            headers,
            background=BackgroundTask(answer.aclose),
        )
        await response(scope, receive, send)


@contextmanager
def round_robin(targets: list[str], directory: Path) -> Iterator[str]:
    """The proxy on a loopback port, as a process of its own (its log in ``directory``):
    its URL."""
    port = free_port()
    log = directory / "roundrobin.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.scaleout.roundrobin", str(port), *targets],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                httpx.get(url + "/v2/", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"the proxy did not start: {log.read_text()}"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def main(arguments: list[str]) -> None:
    port, targets = int(arguments[0]), arguments[1:]
    uvicorn.run(RoundRobin(targets), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
