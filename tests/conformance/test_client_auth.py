"""The suite's client answers challenges as registry clients do, checked request by request
against a scripted registry (httpx's MockTransport) and a real token server."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ocireg.conformance.checks import ConformanceFailure
from ocireg.conformance.client import RegistryAuth
from tests.auth.tokenserver import TokenServer

BASIC = "Basic " + base64.b64encode(b"ci:ci-pw").decode()
Seen = list[tuple[str, str, str | None]]


def scripted(seen: Seen, answer: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    """A registry recording (method, path with query, Authorization) of each request."""

    def handle(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        seen.append((request.method, target, request.headers.get("Authorization")))
        return answer(request)

    return httpx.MockTransport(handle)


def basic_registry(request: httpx.Request) -> httpx.Response:
    if request.headers.get("Authorization") == BASIC:
        return httpx.Response(200)
    return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})


def test_basic_credentials_go_up_front_once_challenged() -> None:
    seen: Seen = []
    auth = RegistryAuth("ci", "ci-pw")
    with httpx.Client(transport=scripted(seen, basic_registry), auth=auth) as client:
        assert client.get("http://r/v2/").status_code == 200
        assert client.get("http://r/v2/a/tags/list").status_code == 200
    assert seen == [
        ("GET", "/v2/", None),
        ("GET", "/v2/", BASIC),
        ("GET", "/v2/a/tags/list", BASIC),
    ]


def test_refused_basic_credentials_leave_the_401() -> None:
    seen: Seen = []
    auth = RegistryAuth("ci", "wrong")
    with httpx.Client(transport=scripted(seen, basic_registry), auth=auth) as client:
        assert client.get("http://r/v2/").status_code == 401
        assert client.get("http://r/v2/").status_code == 401
    assert [header is None for _, _, header in seen] == [True, False, False]


@pytest.fixture
def tokens(tmp_path: Path) -> Iterator[TokenServer]:
    with TokenServer(tmp_path, users={"ci": "ci-pw"}) as server:  # grants what is asked
        yield server


def token_registry(tokens: TokenServer) -> Callable[[httpx.Request], httpx.Response]:
    """Challenges anything without a Bearer token, naming the scope distribution would."""

    def answer(request: httpx.Request) -> httpx.Response:
        if (request.headers.get("Authorization") or "").startswith("Bearer "):
            return httpx.Response(201 if "mount" in request.url.params else 200)
        name = request.url.path.removeprefix("/v2/").split("/blobs/")[0].split("/tags/")[0]
        actions = "pull" if request.method in ("GET", "HEAD") else "pull,push"
        challenge = (
            f'Bearer realm="{tokens.realm}",service="{tokens.service}",'
            f'scope="repository:{name}:{actions}"'
        )
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    return answer


def test_a_token_per_repository_and_a_mount_asks_for_its_source(tokens: TokenServer) -> None:
    seen: Seen = []
    auth = RegistryAuth("ci", "ci-pw")
    transport = scripted(seen, token_registry(tokens))
    with httpx.Client(transport=transport, auth=auth, base_url="http://r") as client:
        assert client.get("/v2/a/tags/list").status_code == 200
        assert client.get("/v2/a/tags/list").status_code == 200  # the cached token
        mount = client.post("/v2/b/blobs/uploads/", params={"mount": "sha256:x", "from": "a"})
        assert mount.status_code == 201
    assert [(r.subject, r.scopes) for r in tokens.requests] == [
        ("ci", ("repository:a:pull",)),
        # asked before the mount was sent: a registry may answer it with a plain upload
        ("ci", ("repository:b:pull,push", "repository:a:pull")),
    ]
    assert [header is None for _, _, header in seen] == [True, False, False, False]


def test_without_credentials_tokens_are_anonymous(tmp_path: Path) -> None:
    seen: Seen = []
    with TokenServer(tmp_path) as tokens:  # anonymous callers get what they ask for
        transport = scripted(seen, token_registry(tokens))
        with httpx.Client(transport=transport, auth=RegistryAuth(None, None)) as client:
            assert client.get("http://r/v2/a/tags/list").status_code == 200
        assert [(r.subject, r.scopes) for r in tokens.requests] == [("", ("repository:a:pull",))]


def test_without_credentials_a_refused_anonymous_token_leaves_the_401(tmp_path: Path) -> None:
    seen: Seen = []
    with TokenServer(tmp_path, anonymous=False) as tokens:
        transport = scripted(seen, token_registry(tokens))
        with httpx.Client(transport=transport, auth=RegistryAuth(None, None)) as client:
            assert client.get("http://r/v2/a/tags/list").status_code == 401
    assert len(seen) == 1


def test_a_token_server_refusing_the_credentials_fails_the_check(tokens: TokenServer) -> None:
    transport = scripted([], token_registry(tokens))
    auth = RegistryAuth("ci", "wrong")
    with (
        httpx.Client(transport=transport, auth=auth) as client,
        pytest.raises(ConformanceFailure, match="answered 401"),
    ):
        client.get("http://r/v2/a/tags/list")
