"""Bearer tokens as the Docker/distribution token authentication spec defines them.

zot's ``http.auth.bearer`` names a token server (``realm``), the audience the registry answers to
(``service``) and a certificate (``cert``) whose key signs the tokens. A client that gets a 401
carrying :meth:`BearerAuth.challenge` asks the realm for a JWT, and every request then carries that
JWT; :meth:`BearerAuth.verify` turns it into a :class:`Grant`, the ``access`` entries the token
server put in it. Deciding whether a grant covers a request is the caller's business.

The configured key is the only one trusted: headers that name or carry keys (``kid``, ``jwk``,
``x5c``) are ignored, so a token cannot bring its own key. Which algorithms are accepted follows
from that key's type, so "none" and HMAC (with the public key as the secret) are never tried.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from ocireg.auth.bearerconfig import BearerConfig, TokenError, is_control
from ocireg.publickeys import certificate_public_key, load_pem_public_key

__all__ = [
    "Access",
    "BearerAuth",
    "BearerConfig",
    "Grant",
    "TokenError",
    "algorithms_for",
    "format_scope",
    "load_public_key",
]

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

# Clocks of the token server and the registry drift; distribution allows the same slack.
DEFAULT_LEEWAY = 30.0
DEFAULT_CACHE_SIZE = 1024

_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
# An EC key signs with the one algorithm of its curve (RFC 7518 §3.4).
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
# RFC 6750 §3.1: the only error codes a Bearer challenge may carry.
_CHALLENGE_ERRORS = frozenset({"invalid_request", "invalid_token", "insufficient_scope"})


@dataclass(frozen=True)
class Access:
    """One entry of the token's ``access`` claim: actions allowed on one resource."""

    type: str
    name: str
    actions: frozenset[str]


@dataclass(frozen=True)
class Grant:
    """What a verified token lets its bearer do."""

    subject: str
    access: tuple[Access, ...]

    def allows(self, type: str, name: str, action: str) -> bool:
        wanted = _without_class(type)
        return any(
            _without_class(entry.type) == wanted
            and entry.name == name
            and (action in entry.actions or "*" in entry.actions)
            for entry in self.access
        )


def format_scope(type: str, name: str, actions: Iterable[str]) -> str:
    """``repository:team/app:pull,push``, one resource scope of the spec's grammar."""
    return f"{type}:{name}:{','.join(actions)}"


class BearerAuth:
    """Verifies tokens against the configured key and writes the challenge that asks for them."""

    def __init__(
        self,
        config: BearerConfig,
        *,
        leeway: float = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._key = load_public_key(Path(config.cert))
        self._algorithms = algorithms_for(self._key)
        self._leeway = leeway
        self._cache = _GrantCache(cache_size, clock)

    def verify(self, token: str) -> Grant:
        """The grant of a valid token; :class:`TokenError` for anything else."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        claims = self._decode(token)
        grant = Grant(subject=_subject(claims), access=_access(claims.get("access")))
        self._cache.put(token, grant, _expiry(claims))
        return grant

    def challenge(self, scopes: list[str], error: str | None = None) -> str:
        """The ``WWW-Authenticate`` value sending a client to the token server for ``scopes``."""
        params = [("realm", self.config.realm), ("service", self.config.service)]
        # One scope parameter, space-separated, as distribution writes it and clients parse it.
        joined = " ".join(dict.fromkeys(scope for scope in scopes if scope))
        if joined:
            params.append(("scope", joined))
        if error is not None:
            if error not in _CHALLENGE_ERRORS:
                raise ValueError(f"{error!r} is not a Bearer error code (RFC 6750 §3.1)")
            params.append(("error", error))
        return "Bearer " + ",".join(f"{key}={_quoted(value)}" for key, value in params)

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self.config.service,
                leeway=self._leeway,
                # Without exp a token would be good forever; the spec's tokens always carry one.
                options={"require": ["exp", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(_reason(exc)) from None
        except (ValueError, TypeError, OverflowError, RecursionError):
            # Older PyJWT (2.8) lets int() on a hostile claim (null, a list, 1e400) or deeply
            # nested JSON fail with these instead of its own errors.
            raise TokenError("malformed token") from None
        return claims


def load_public_key(path: Path) -> PublicKey:
    """The key of a PEM certificate or PEM public key; ValueError says what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"bearer cert {path}: cannot read it: {exc.strerror or exc}") from None
    key = _key_from_pem(data, path)
    if not isinstance(key, PublicKey):
        raise ValueError(
            f"bearer cert {path}: a {type(key).__name__} cannot sign tokens here; "
            "use an RSA, EC (P-256, P-384, P-521), Ed25519 or Ed448 key"
        )
    return key


def algorithms_for(key: PublicKey) -> list[str]:
    """The JWS algorithms a token signed by ``key``'s owner may name."""
    if isinstance(key, rsa.RSAPublicKey):
        return list(_RSA_ALGORITHMS)
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = _EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise ValueError(f"EC curve {key.curve.name} has no JWS algorithm")
        return [algorithm]
    return ["EdDSA"]


def _key_from_pem(data: bytes, path: Path) -> object:
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            # The first certificate, as zot reads the file; a chain after it adds no trust.
            return certificate_public_key(x509.load_pem_x509_certificate(data))
        except ValueError as exc:
            raise ValueError(f"bearer cert {path}: not a valid PEM certificate: {exc}") from None
    if b"PRIVATE KEY-----" in data and b"PUBLIC KEY-----" not in data:
        raise ValueError(
            f"bearer cert {path}: holds a private key; configure the token signer's "
            "certificate or public key instead"
        )
    try:
        return load_pem_public_key(data)
    except (ValueError, TypeError):
        raise ValueError(
            f"bearer cert {path}: neither a PEM certificate nor a PEM public key"
        ) from None


def _reason(exc: jwt.PyJWTError) -> str:
    # Short and fixed: PyJWT's own messages can quote attacker-chosen header values.
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "token not yet valid"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "bad signature"
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return "signature algorithm not accepted"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "token is for another service"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token has no {exc.claim} claim"
    return "malformed token"


def _expiry(claims: dict[str, Any]) -> float:
    """``exp``; ``nbf`` and ``iat``, when present, must be NumericDates as well."""
    for name in ("nbf", "iat"):
        if name in claims:
            _numeric_date(claims, name)
    return _numeric_date(claims, "exp")


def _numeric_date(claims: dict[str, Any], name: str) -> float:
    # PyJWT accepts "123" and true through int(); the JWT NumericDate is a JSON number only.
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenError(f"malformed {name} claim")
    return float(value)


def _subject(claims: dict[str, Any]) -> str:
    subject = claims.get("sub", "")
    if not isinstance(subject, str):
        raise TokenError("malformed sub claim")
    return subject


def _access(claim: object) -> tuple[Access, ...]:
    # A Go token server marshals an empty grant as null; it grants nothing, as an absent claim.
    if claim is None:
        return ()
    if not isinstance(claim, list):
        raise TokenError("malformed access claim")
    return tuple(_access_entry(entry) for entry in claim)


def _access_entry(entry: object) -> Access:
    if not isinstance(entry, dict):
        raise TokenError("malformed access claim")
    type_, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
    if not isinstance(type_, str) or not isinstance(name, str):
        raise TokenError("malformed access claim")
    if actions is None:
        actions = []
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise TokenError("malformed access claim")
    return Access(type=type_, name=name, actions=frozenset(actions))


def _without_class(type: str) -> str:
    # The token scope spec: a resource class ("repository(plugin)") is deprecated and ignored.
    return type.split("(", 1)[0]


def _quoted(value: str) -> str:
    """An RFC 7230 quoted-string."""
    if any(is_control(char) for char in value):
        raise ValueError(f"{value!r} cannot go in a header: it has control characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _GrantCache:
    """Grants of verified tokens by token, least recently used dropped first.

    An entry lasts until its token's ``exp`` (the leeway is not added: the cache never extends a
    token's life, the full check runs again after ``exp``). Only verified tokens are stored, so
    garbage cannot evict good entries.
    """

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Grant]] = OrderedDict()
        # verify() runs in Starlette's thread pool as well as on the event loop.
        self._lock = threading.Lock()

    def get(self, token: str) -> Grant | None:
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            expires_at, grant = entry
            if self._clock() >= expires_at:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return grant

    def put(self, token: str, grant: Grant, expires_at: float) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._entries[token] = (expires_at, grant)
            self._entries.move_to_end(token)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
