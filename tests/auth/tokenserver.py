"""A token server for tests, in the shape of the distribution token authentication spec.

``TokenServer(directory)`` makes a signing key and a self-signed certificate for it (written to
``directory``) and can mint tokens in-process with :meth:`TokenServer.issue`. As a context manager
it also serves ``GET /token?service=…&scope=…`` on a free loopback port in a background thread:
Basic credentials are checked against ``users``, ``policy`` decides which of the requested actions
each subject gets, and the answer carries the intersection, as the spec asks::

    with TokenServer(tmp_path, users={"alice": "secret"}, policy=my_policy) as server:
        auth = BearerAuth(server.config())
        token = httpx.get(server.realm, params=..., auth=("alice", "secret")).json()["token"]
        assert auth.verify(token).allows("repository", "team/app", "pull")
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from ocireg.auth.bearer import Access, BearerConfig

KeyType = Literal["rsa", "ec", "ec384", "ed25519"]
PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
# (subject, requested access) -> the actions the subject may have; the server intersects.
Policy = Callable[[str, Access], Iterable[str]]

DEFAULT_SERVICE = "ocireg-test"
_ALGORITHMS: dict[KeyType, str] = {
    "rsa": "RS256",
    "ec": "ES256",
    "ec384": "ES384",
    "ed25519": "EdDSA",
}


def allow_all(subject: str, requested: Access) -> Iterable[str]:
    """The default policy: everyone, anonymous included, gets whatever they ask for."""
    return requested.actions


def generate_key(key_type: KeyType = "rsa") -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


def self_signed_cert(key: PrivateKey, common_name: str = "ocireg test token signer") -> bytes:
    """A PEM certificate for ``key``, valid from an hour ago for a day."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    # Ed25519 signs without a separate digest; cryptography wants None for it.
    digest = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, digest)
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def parse_scope(scope: str) -> Access:
    """``repository:host:5000/team/app:pull,push`` → Access; the name may hold a colon (port).

    Raises ValueError for a scope without type, name and actions.
    """
    type_, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and type_ and name):
        raise ValueError(f"invalid scope {scope!r}")
    return Access(type=type_, name=name, actions=frozenset(a for a in actions.split(",") if a))


def access_claim(access: Iterable[Access]) -> list[dict[str, Any]]:
    return [
        {"type": entry.type, "name": entry.name, "actions": sorted(entry.actions)}
        for entry in access
    ]


@dataclass(frozen=True)
class TokenRequest:
    """One request the HTTP endpoint answered, for tests to check what a client asked for."""

    subject: str
    service: str
    scopes: tuple[str, ...]
    granted: tuple[Access, ...]


class TokenServer:
    def __init__(
        self,
        directory: Path,
        *,
        service: str = DEFAULT_SERVICE,
        users: Mapping[str, str] | None = None,
        policy: Policy = allow_all,
        key_type: KeyType = "rsa",
        expires_in: int = 300,
        anonymous: bool = True,
    ) -> None:
        self.service = service
        self.users = dict(users or {})
        self.policy = policy
        self.expires_in = expires_in
        self.anonymous = anonymous
        self.algorithm = _ALGORITHMS[key_type]
        self.private_key = generate_key(key_type)
        self.cert_pem = self_signed_cert(self.private_key)
        self.public_key_pem = self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.cert_path = directory / "token-signer.crt"
        self.cert_path.write_bytes(self.cert_pem)
        self.public_key_path = directory / "token-signer.pub.pem"
        self.public_key_path.write_bytes(self.public_key_pem)
        self.kid = _key_id(self.public_key_pem)
        self.requests: list[TokenRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- minting ----------------------------------------------------------------------------

    def issue(
        self,
        subject: str = "",
        access: Iterable[Access] = (),
        *,
        expires_in: float | None = None,
        not_before: float | None = None,
        audience: str | list[str] | None = None,
        algorithm: str | None = None,
        headers: Mapping[str, Any] | None = None,
        claims: Mapping[str, Any] | None = None,
        omit: Iterable[str] = (),
    ) -> str:
        """A signed token; times are offsets in seconds from now (negative is in the past).

        ``expires_in`` defaults to the server's, ``audience`` to its service; ``claims`` adds or
        replaces claims (malformed ones too) and ``omit`` drops claims after that.
        """
        payload = self.claims(subject, access, expires_in=expires_in, not_before=not_before)
        if audience is not None:
            payload["aud"] = audience
        payload.update(claims or {})
        for name in omit:
            payload.pop(name, None)
        return self.sign(json.dumps(payload).encode(), algorithm=algorithm, headers=headers)

    def claims(
        self,
        subject: str,
        access: Iterable[Access],
        *,
        expires_in: float | None = None,
        not_before: float | None = None,
    ) -> dict[str, Any]:
        now = int(time.time())
        lifetime = self.expires_in if expires_in is None else expires_in
        return {
            "iss": "ocireg-test-token-server",
            "sub": subject,
            "aud": self.service,
            "exp": int(now + lifetime),
            "nbf": int(now + (not_before or 0)),
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access_claim(access),
        }

    def sign(
        self,
        payload: bytes,
        *,
        algorithm: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """``payload`` (raw JSON bytes, so tests can sign anything) as a JWS with this key."""
        header = {"typ": "JWT", "kid": self.kid, **(headers or {})}
        return jwt.api_jws.encode(
            payload, self.private_key, algorithm=algorithm or self.algorithm, headers=header
        )

    def config(self, *, cert: Path | None = None, realm: str | None = None) -> BearerConfig:
        """The ``http.auth.bearer`` section of a registry trusting this server."""
        return BearerConfig(
            realm=realm or (self.realm if self._httpd else "http://127.0.0.1:1/token"),
            service=self.service,
            cert=str(cert or self.cert_path),
        )

    # -- the HTTP endpoint ------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the token server is not running: use it as a context manager")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    def start(self) -> None:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.daemon_threads = True
        httpd.token_server = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> TokenServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def authenticate(self, authorization: str | None) -> str:
        """The subject of a request: "" when anonymous; PermissionError for bad credentials."""
        if not authorization:
            if self.anonymous:
                return ""
            raise PermissionError("credentials required")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise PermissionError("only Basic credentials are understood")
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise PermissionError("malformed Basic credentials") from None
        expected = self.users.get(user)
        if not sep or expected is None or not hmac.compare_digest(expected, password):
            raise PermissionError("bad credentials")
        return user

    def grant(self, subject: str, requested: Iterable[Access]) -> tuple[Access, ...]:
        """The spec's intersection of what was asked for and what the policy allows."""
        granted = []
        for wanted in requested:
            allowed = frozenset(self.policy(subject, wanted))
            if "*" not in allowed:
                wanted = Access(wanted.type, wanted.name, wanted.actions & allowed)
            granted.append(wanted)
        return tuple(granted)

    def respond(self, subject: str, service: str, scopes: list[str]) -> dict[str, Any]:
        granted = self.grant(subject, [parse_scope(scope) for scope in scopes])
        self.requests.append(TokenRequest(subject, service, tuple(scopes), granted))
        now = time.time()
        token = self.issue(subject, granted, audience=service)
        issued_at = dt.datetime.fromtimestamp(int(now), dt.UTC)
        return {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": issued_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/token":
            self._json(404, {"error": "not found"})
            return
        server: TokenServer = self.server.token_server  # type: ignore[attr-defined]
        try:
            subject = server.authenticate(self.headers.get("Authorization"))
        except PermissionError as exc:
            self._json(401, {"error": str(exc)}, {"WWW-Authenticate": 'Basic realm="token"'})
            return
        query = parse_qs(url.query, keep_blank_values=True)
        service = query.get("service", [""])[0]
        # Each scope parameter may itself hold several scopes separated by spaces.
        scopes = [scope for value in query.get("scope", []) for scope in value.split()]
        if not service:
            self._json(400, {"error": "service is required"})
            return
        try:
            body = server.respond(subject, service, scopes)
        except ValueError as exc:
            self._json(400, {"error": str(exc)})
            return
        self._json(200, body)

    def do_POST(self) -> None:
        # The OAuth2 form is not served; the spec tells clients to fall back to GET on a 404.
        self._json(404, {"error": "use GET"})

    def _json(self, status: int, body: object, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest's output clean


def _key_id(public_key_pem: bytes) -> str:
    return hashlib.sha256(public_key_pem).hexdigest()[:16]
