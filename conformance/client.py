"""The suite's HTTP client: Basic and Bearer-token auth, debug traces, schema validation."""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Generator

import httpx
import pytest

from ocireg.conformance.checks import ConformanceFailure
from ocireg.conformance.schema import Deviation, deviations
from ocireg.conformance.settings import Settings
from ocireg.names import repository_of

_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryAuth(httpx.Auth):
    """Answer a 401 challenge: Basic with the credentials, or the distribution token flow.

    Tokens are cached per scope, so each repository asks its token server once.
    """

    def __init__(self, username: str | None, password: str | None) -> None:
        self.credentials = (username, password or "") if username else None
        self.tokens: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        cached = self.tokens.get(self._scope_key(request))
        if cached:
            request.headers["Authorization"] = f"Bearer {cached}"
        response = yield request
        if response.status_code != 401 or self.credentials is None:
            return
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            user, password = self.credentials
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.headers["Authorization"] = f"Basic {token}"
            yield request
        elif scheme.lower() == "bearer":
            token = self._fetch_token(dict(_PARAM.findall(params)))
            self.tokens[self._scope_key(request)] = token
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def _scope_key(self, request: httpx.Request) -> str:
        return repository_of(request.url.path) or request.url.path

    def _fetch_token(self, challenge: dict[str, str]) -> str:
        realm = challenge.pop("realm", "")
        if not realm:
            raise ConformanceFailure("a Bearer challenge without realm= (token auth spec)")
        assert self.credentials is not None
        answer = httpx.get(realm, params=challenge, auth=self.credentials, timeout=30)
        if answer.status_code != 200:
            raise ConformanceFailure(f"the token server at {realm} answered {answer.status_code}")
        document = answer.json()
        token = document.get("token") or document.get("access_token")
        if not token:
            raise ConformanceFailure(f"the token server at {realm} answered no token")
        return str(token)


class SchemaWatch:
    """Checks every response against the published schema, as the settings ask."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.found: list[Deviation] = []

    def __call__(self, response: httpx.Response) -> None:
        if self.mode == "off" or response.status_code == 401:
            return
        response.read()
        problems = deviations(response)
        self.found.extend(problems)
        if problems and self.mode == "strict":
            listed = "\n  ".join(str(p) for p in problems)
            raise ConformanceFailure(f"response departs from spec/openapi.yaml:\n  {listed}")


WATCH_KEY = pytest.StashKey[SchemaWatch]()


def _trace(response: httpx.Response) -> None:
    request = response.request
    print(f"> {request.method} {request.url}", file=sys.stderr)
    for name, value in request.headers.multi_items():
        shown = "<redacted>" if name.lower() == "authorization" else value
        print(f"> {name}: {shown}", file=sys.stderr)
    response.read()
    print(f"< {response.status_code}", file=sys.stderr)
    for name, value in response.headers.multi_items():
        print(f"< {name}: {value}", file=sys.stderr)
    if response.content and len(response.content) < 4096:
        print(response.content.decode("utf-8", "replace"), file=sys.stderr)


def make_client(settings: Settings, watch: SchemaWatch) -> httpx.Client:
    hooks = [watch, *([_trace] if settings.debug else [])]
    return httpx.Client(
        base_url=settings.root_url,
        auth=RegistryAuth(settings.username, settings.password),
        timeout=60,
        follow_redirects=True,
        verify=settings.tls_verify,
        event_hooks={"response": hooks},
    )
