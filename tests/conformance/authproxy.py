"""An auth-enforcing reverse proxy in front of a registry, to test the suite's auth flows.

``basic`` answers 401 with a Basic challenge unless the request carries the credentials;
``bearer`` answers 401 with a distribution token-auth challenge whose realm (``/token`` on the
proxy itself) hands out a token for the credentials, and accepts only tokens it issued; ``open``
lets everything through. ``override`` may answer a request in the registry's place (a registry
that departs from the spec in one way, to show that the suite notices).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.liveserver import free_port

HOP_HEADERS = {"host", "authorization", "content-length", "transfer-encoding", "connection"}
Override = Callable[[Request], "Response | None"]


def build_app(
    upstream: str, mode: str, username: str, password: str, url: str, override: Override | None
) -> Starlette:
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    tokens: set[str] = set()

    def challenge(request: Request) -> Response:
        if mode == "basic":
            header = 'Basic realm="proxy"'
        else:
            name = request.url.path.removeprefix("/v2/").rsplit("/", 2)[0]
            header = (
                f'Bearer realm="{url}/token",service="proxy",scope="repository:{name}:pull,push"'
            )
        body = {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}
        return JSONResponse(body, 401, headers={"WWW-Authenticate": header})

    async def token(request: Request) -> Response:
        if request.headers.get("Authorization") != expected:
            return JSONResponse({"errors": [{"code": "UNAUTHORIZED"}]}, 401)
        issued = secrets.token_hex(16)
        tokens.add(issued)
        return JSONResponse({"token": issued, "expires_in": 300})

    async def forward(request: Request) -> Response:
        given = request.headers.get("Authorization", "")
        allowed = {
            "basic": given == expected,
            "bearer": given.removeprefix("Bearer ") in tokens,
        }.get(mode, mode == "open")
        if not allowed:
            return challenge(request)
        instead = override(request) if override is not None else None
        if instead is not None:
            return instead
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with httpx.AsyncClient(base_url=upstream, timeout=60) as client:
            answer = await client.request(
                request.method,
                request.url.path,
                params=list(request.query_params.multi_items()),
                content=await request.body(),
                headers=headers,
            )
        passed = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in HOP_HEADERS]
        response = Response(answer.content, answer.status_code)
        for key, value in passed:
            response.headers.append(key, value)
        if request.method == "HEAD" and "content-length" in answer.headers:
            response.headers["content-length"] = answer.headers["content-length"]
        return response

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(
        routes=[
            Route("/token", token, methods=["GET"]),
            Route("/{path:path}", forward, methods=methods),
        ]
    )


@contextmanager
def auth_proxy(
    upstream: str,
    mode: str,
    username: str = "",
    password: str = "",
    override: Override | None = None,
) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = build_app(upstream, mode, username, password, url, override)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the auth proxy did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
