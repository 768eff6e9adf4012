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
    """Answer a 401 challenge as registry clients do: Basic with the credentials, or the
    distribution token flow (a token for the credentials, or an anonymous one without any).

    Once the registry asked for Basic, the credentials go with every request, as docker's and
    containers/image's clients send them, so a run does not make each request twice. Tokens are
    cached per repository. A mount with ``from=`` also asks for pull on the source, as containerd
    and containers/image do: a registry may answer a token without it with a plain upload (202)
    rather than a challenge, and the mount checks would fail for want of a scope.
    """

    def __init__(self, username: str | None, password: str | None, verify: bool = True) -> None:
        self.credentials = (username, password or "") if username else None
        self.verify = verify
        self.basic = False  # the registry challenged for Basic: send the credentials up front
        self.token_server: dict[str, str] | None = None  # realm and service of the challenge
        self.tokens: dict[str, str] = {}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key, extra = self._scope_key(request), self._mount_scope(request)
        if self.basic:
            self._set_basic(request)
        elif key in self.tokens:
            request.headers["Authorization"] = f"Bearer {self.tokens[key]}"
        elif extra and self.token_server is not None:
            scopes = [f"repository:{repository_of(request.url.path)}:pull,push", extra]
            token = self._fetch_token(self.token_server, scopes)
            if token is not None:
                self.tokens[key] = token
                request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        scheme, _, rest = response.headers.get("WWW-Authenticate", "").partition(" ")
        if scheme.lower() == "basic":
            if self.credentials is None or "Authorization" in request.headers:
                return  # nothing to send, or the credentials were refused
            self.basic = True
            self._set_basic(request)
            yield request
        elif scheme.lower() == "bearer":
            params = dict(_PARAM.findall(rest))
            realm = params.get("realm", "")
            if not realm:
                raise ConformanceFailure("a Bearer challenge without realm= (token auth spec)")
            self.token_server = {"realm": realm, "service": params.get("service", "")}
            scopes = params.get("scope", "").split() + ([extra] if extra else [])
            token = self._fetch_token(self.token_server, scopes)
            if token is None:
                return
            self.tokens[key] = token
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def _set_basic(self, request: httpx.Request) -> None:
        assert self.credentials is not None
        user, password = self.credentials
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.headers["Authorization"] = f"Basic {token}"

    def _scope_key(self, request: httpx.Request) -> str:
        key = repository_of(request.url.path) or request.url.path
        source = self._mount_source(request)
        return f"{key} from {source}" if source else key

    def _mount_source(self, request: httpx.Request) -> str | None:
        if request.method != "POST" or "mount" not in request.url.params:
            return None
        return request.url.params.get("from") or None

    def _mount_scope(self, request: httpx.Request) -> str | None:
        source = self._mount_source(request)
        return f"repository:{source}:pull" if source else None

    def _fetch_token(self, server: dict[str, str], scopes: list[str]) -> str | None:
        """A token for ``scopes`` from the realm; None when an anonymous caller gets none."""
        realm = server["realm"]
        params = [("service", server["service"])] if server["service"] else []
        # One scope parameter per scope, as the token auth spec and docker's clients send them.
        params += [("scope", scope) for scope in dict.fromkeys(scopes)]
        answer = httpx.get(
            realm, params=params, auth=self.credentials, timeout=30, verify=self.verify
        )
        if answer.status_code != 200:
            if self.credentials is None:
                return None  # the registry's 401 stands: this run has no credentials
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
        self.opaque_left_out = 0  # departures in values the spec leaves opaque: not findings

    def __call__(self, response: httpx.Response) -> None:
        if self.mode == "off" or response.status_code == 401:
            return
        response.read()
        problems = []
        for deviation in deviations(response):
            if deviation.opaque:
                self.opaque_left_out += 1
            else:
                problems.append(deviation)
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
        auth=RegistryAuth(settings.username, settings.password, settings.tls_verify),
        timeout=60,
        follow_redirects=True,
        verify=settings.tls_verify,
        event_hooks={"response": hooks},
    )
