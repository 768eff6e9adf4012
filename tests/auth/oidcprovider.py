"""A small OpenID Connect provider for tests, served on a loopback port in a thread.

It speaks the authorization code flow as a real provider does: a discovery document, a JWKS,
an authorization endpoint that logs in ``user`` at once (no page: the test decides who), a token
endpoint that checks the client, the redirect URI, the code's age and single use and the PKCE
verifier, then issues an RS256 ID token signed with jwcrypto, and a userinfo endpoint.

Each misbehaviour a relying party must catch is a switch on the object (``nonce``, ``issuer``,
``audience``, ``tamper``, ``code_lifetime``, ``token_lifetime``, ``signing_key``)::

    with OpenIDProvider(user={"email": "ann@example.com", "groups": ["devs"]}) as op:
        config = {"oidc": op.provider_config()}
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from jwcrypto import jwk, jwt

CLIENT_ID = "ocireg-test"
CLIENT_SECRET = "test-secret-123"


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str
    issued: float
    used: bool = False


@dataclass
class OpenIDProvider:
    user: dict[str, Any] = field(default_factory=lambda: {"sub": "u-1", "email": "ann@example.com"})
    client_id: str = CLIENT_ID
    client_secret: str | None = CLIENT_SECRET
    # switches a test turns to make the provider misbehave
    nonce: str | None = None  # put this nonce in the ID token instead of the one asked for
    issuer: str | None = None  # put this iss in the ID token instead of the provider's own
    audience: str | list[str] | None = None  # this aud instead of the client's id
    tamper: bool = False  # change the ID token's claims after signing
    code_lifetime: float = 60.0  # seconds a code may be exchanged after it was issued
    token_lifetime: float = 300.0  # seconds the ID token is valid
    signing_key: jwk.JWK | None = None  # sign with this key instead of the published one
    # only in the ID token (None: left out of it, though userinfo has it)
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # paths asked for, in order

    def __post_init__(self) -> None:
        self.key = jwk.JWK.generate(kty="RSA", size=2048, kid="test-key-1", use="sig", alg="RS256")
        self._codes: dict[str, _Code] = {}
        self._access_tokens: dict[str, dict[str, Any]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OpenIDProvider:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def provider_config(self, **extra: Any) -> dict[str, Any]:
        """``http.auth.openid.providers.oidc`` for a registry to use this provider."""
        config: dict[str, Any] = {"clientid": self.client_id, "issuer": self.url}
        if self.client_secret:
            config["clientsecret"] = self.client_secret
        return {**config, **extra}

    # -- endpoints --------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [json.loads(self.key.export_public())]}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Log ``user`` in at once and send the browser back with a code."""
        redirect = query.get("redirect_uri", "")
        wanted = ("response_type", "client_id", "redirect_uri", "state", "code_challenge")
        if any(not query.get(name) for name in wanted) or query["response_type"] != "code":
            return 400, {}, b"bad authorization request"
        if query.get("code_challenge_method") != "S256" or query["client_id"] != self.client_id:
            return 400, {}, b"bad client or PKCE method"
        code = secrets.token_urlsafe(24)
        self._codes[code] = _Code(
            query["client_id"], redirect, query.get("nonce"), query["code_challenge"], time.time()
        )
        back = f"{redirect}?{urlencode({'code': code, 'state': query['state']})}"
        return 302, {"Location": back}, b""

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        client_id, secret = form.get("client_id", ""), None
        if authorization.startswith("Basic "):
            client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if client_id != self.client_id or (self.client_secret and secret != self.client_secret):
            return 401, {"error": "invalid_client"}
        code = self._codes.get(form.get("code", ""))
        if code is None or code.used or time.time() - code.issued > self.code_lifetime:
            return 400, {"error": "invalid_grant", "error_description": "unknown or expired"}
        code.used = True
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.rstrip(b"=").decode() != code.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verifier"}
        if form.get("redirect_uri") != code.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        access = secrets.token_urlsafe(24)
        self._access_tokens[access] = dict(self.user)
        return 200, {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(code.nonce),
        }

    def id_token(self, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer or self.url,
            "sub": self.user.get("sub", "u-1"),
            "aud": self.audience or self.client_id,
            "iat": now,
            "exp": now + int(self.token_lifetime),
            **({"nonce": self.nonce or nonce} if (self.nonce or nonce) else {}),
            **{k: v for k, v in self.user.items() if k != "sub"},
            **self.id_token_claims,
        }
        claims = {k: v for k, v in claims.items() if v is not None}  # None: leave it out
        key = self.signing_key or self.key
        token = jwt.JWT(header={"alg": "RS256", "kid": key.get("kid")}, claims=claims)
        token.make_signed_token(key)
        serialized: str = token.serialize()
        if self.tamper:  # another user's claims under the signature of the first
            header, _, rest = serialized.partition(".")
            _, _, signature = rest.partition(".")
            forged = {**claims, "email": "mallory@example.com", "groups": ["admins"]}
            payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=")
            serialized = f"{header}.{payload.decode()}.{signature}"
        return serialized

    def github(self, path: str, authorization: str) -> tuple[int, Any]:
        """GitHub's /user/emails and /user/orgs for the user the access token is for."""
        claims = self._access_tokens.get(authorization.removeprefix("Bearer "))
        if claims is None:
            return 401, {"message": "Bad credentials"}
        if path.endswith("/emails"):
            return 200, [{"email": claims.get("email"), "primary": True, "verified": True}]
        return 200, [{"login": group} for group in claims.get("groups", [])]

    def userinfo(self, authorization: str) -> tuple[int, dict[str, Any]]:
        claims = self._access_tokens.get(authorization.removeprefix("Bearer "))
        if claims is None:
            return 401, {"error": "invalid_token"}
        return 200, {"sub": claims.get("sub", "u-1"), **claims}


def _handler(provider: OpenIDProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            provider.requests.append(parts.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif parts.path == "/jwks":
                self._json(200, provider.jwks())
            elif parts.path in ("/authorize", "/login/oauth/authorize"):  # OIDC, GitHub
                status, headers, body = provider.authorize(query)
                self._answer(status, headers, body)
            elif parts.path == "/userinfo":
                self._json(*provider.userinfo(self.headers.get("Authorization", "")))
            elif parts.path.startswith("/api/v3/user/"):  # GitHub Enterprise's API
                self._json(*provider.github(parts.path, self.headers.get("Authorization", "")))
            else:
                self._answer(404, {}, b"not found")

        def do_POST(self) -> None:
            provider.requests.append(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in parse_qs(body).items()}
            if self.path in ("/token", "/login/oauth/access_token"):
                self._json(*provider.token(form, self.headers.get("Authorization", "")))
            else:
                self._answer(404, {}, b"not found")

        def _json(self, status: int, document: Any) -> None:
            self._answer(
                status, {"Content-Type": "application/json"}, json.dumps(document).encode()
            )

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
