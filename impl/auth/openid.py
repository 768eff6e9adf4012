"""OpenID Connect login (zot's ``http.auth.openid``): the relying party's side of the
authorization code flow, with PKCE (S256), state and nonce.

A login starts at :meth:`Provider.start`, which gives the provider's authorization URL and what
the return must be checked against; :meth:`Provider.finish` exchanges the code and returns who
logged in. The ID token is verified here, nowhere else: its signature against the issuer's JWKS
(fetched from the discovery document, fetched again once for a key id it does not know), then
``iss``, ``aud`` (and ``azp`` when there are several audiences), ``exp`` and ``nonce``.

``github`` is OAuth2, not OpenID Connect, as in zot: no ID token; the user is the account's
primary e-mail address and the groups are its organisations, both from GitHub's API
(GitHub Enterprise's at ``/api/v3`` when ``authurl`` names its host).

Network calls use httpx with a short timeout; a provider that cannot be reached or answers
nonsense is :class:`ProviderUnavailable`, a login it or its tokens refuse is
:class:`LoginRefused`. Neither is ever a 500.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from ocireg.auth.openidconfig import (
    GITHUB_AUTH_URL,
    GITHUB_TOKEN_URL,
    OpenIDProvider,
    issuer_of,
)

if TYPE_CHECKING:  # the libraries load when a provider is used: a server without OpenID
    from jwcrypto import jwk  # (the minimal install) routes its endpoints without them

GITHUB_API = "https://api.github.com"
TIMEOUT = 10.0  # seconds for one call to a provider
DISCOVERY_TTL = 3600.0  # seconds a discovery document and its JWKS are kept
LEEWAY = 60  # seconds of clock difference tolerated on exp, iat and nbf
MAX_DOCUMENT = 1024 * 1024  # bytes: a provider's answer larger than this is refused
SIGNING_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                      "ES512", "EdDSA"]  # fmt: skip
CALLBACK_PATH = "/zot/auth/callback"  # zot's: the provider's name follows


class LoginRefused(Exception):
    """The login failed a check (state, code, token, nonce, claims): the reason is safe to
    show."""


class ProviderUnavailable(Exception):
    """The provider could not be reached or its answer was not what the protocol says."""


@dataclass(frozen=True)
class Pending:
    """What a login's return is checked against, kept server-side until then."""

    provider: str
    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    callback: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LoggedIn:
    user: str
    groups: tuple[str, ...]


@dataclass
class _Discovered:
    document: dict[str, Any]
    keys: jwk.JWKSet
    fetched: float


@dataclass
class Provider:
    name: str
    config: OpenIDProvider
    client_id: str
    client_secret: str | None
    transport: httpx.AsyncBaseTransport | None = None  # tests: a provider served in-process
    clock: Callable[[], float] = time.time
    _discovered: _Discovered | None = field(default=None, repr=False)

    @property
    def display_name(self) -> str:
        default = {"oidc": "OpenID", "google": "Google", "gitlab": "GitLab", "github": "GitHub"}
        return self.config.name or default[self.name]

    @property
    def github_api(self) -> str:
        """GitHub's API: api.github.com, or GitHub Enterprise's (``/api/v3`` on the host of
        ``authurl``) when the OAuth endpoints are configured."""
        if self.config.authurl:
            parts = urlsplit(self.config.authurl)
            return f"{parts.scheme}://{parts.netloc}/api/v3"
        return GITHUB_API

    @property
    def issuer(self) -> str | None:
        return issuer_of(self.name, self.config)

    @property
    def scopes(self) -> list[str]:
        scopes = list(self.config.scopes)
        if self.name == "github":
            return scopes or ["read:org", "user:email"]
        # as zot: openid is always asked for, first
        return ["openid", *[s for s in scopes if s != "openid"]]

    # -- the flow -------------------------------------------------------------------------
    async def start(self, redirect_uri: str, callback: str) -> tuple[str, Pending]:
        """The provider's authorization URL to send the browser to, and what to keep."""
        pending = Pending(
            self.name,
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(48),  # PKCE: 43 to 128 characters
            redirect_uri,
            callback,
        )
        from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        endpoint = await self._authorization_endpoint()
        url = prepare_grant_uri(
            endpoint,
            self.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=" ".join(self.scopes),
            state=pending.state,
            nonce=None if self.name == "github" else pending.nonce,
            code_challenge=create_s256_code_challenge(pending.verifier),
            code_challenge_method="S256",
        )
        return url, pending

    async def finish(self, pending: Pending, code: str) -> LoggedIn:
        """Exchange the code and say who logged in; LoginRefused or ProviderUnavailable."""
        tokens = await self._exchange(pending, code)
        if self.name == "github":
            return await self._github_user(_string(tokens, "access_token"))
        claims = await self._verified_claims(_string(tokens, "id_token"), pending.nonce)
        claims = await self._with_userinfo(claims, tokens.get("access_token"))
        return self._identity(claims)

    # -- endpoints --------------------------------------------------------------------------
    async def _authorization_endpoint(self) -> str:
        if self.name == "github":
            return self.config.authurl or GITHUB_AUTH_URL
        return _string((await self._discovery()).document, "authorization_endpoint")

    async def _token_endpoint(self) -> str:
        if self.name == "github":
            return self.config.tokenurl or GITHUB_TOKEN_URL
        return _string((await self._discovery()).document, "token_endpoint")

    async def _discovery(self, refresh: bool = False) -> _Discovered:
        found = self._discovered
        if found is not None and not refresh and self.clock() - found.fetched < DISCOVERY_TTL:
            return found
        issuer = self.issuer
        assert issuer is not None  # every provider but github has one
        document = await self._get_json(f"{issuer}/.well-known/openid-configuration")
        # OpenID Connect Discovery 1.0, 4.3: the document's issuer is exactly the one asked
        if document.get("issuer", "").rstrip("/") != issuer:
            raise ProviderUnavailable(
                f"{issuer}'s discovery document names another issuer: {document.get('issuer')!r}"
            )
        from jwcrypto import jwk
        from jwcrypto.common import JWException

        try:
            keys = jwk.JWKSet.from_json(
                json.dumps(await self._get_json(_string(document, "jwks_uri")))
            )
        except (JWException, ValueError) as exc:
            raise ProviderUnavailable(f"{issuer}'s JWKS cannot be read: {exc}") from None
        self._discovered = _Discovered(document, keys, self.clock())
        return self._discovered

    # -- tokens -----------------------------------------------------------------------------
    async def _exchange(self, pending: Pending, code: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.verifier,
            "client_id": self.client_id,
        }
        auth = None
        if self.client_secret:  # client_secret_basic; a public client sends its id alone
            auth = httpx.BasicAuth(self.client_id, self.client_secret)
        endpoint = await self._token_endpoint()
        try:
            async with self._http(auth) as client:
                answer = await client.post(
                    endpoint, data=form, headers={"Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{endpoint} cannot be reached: {exc}") from None
        document = _json_object(answer, endpoint)
        if answer.status_code != 200 or "error" in document:
            error = str(document.get("error", answer.status_code))[:100]
            raise LoginRefused(f"the provider refused the authorization code ({error})")
        return document

    async def _verified_claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        kid = _key_id(id_token)
        discovered = await self._discovery()
        if kid is not None and _find_key(discovered.keys, kid) is None:
            # the provider may have rotated its keys since they were fetched: once more
            discovered = await self._discovery(refresh=True)
        keys: jwk.JWK | jwk.JWKSet | None = discovered.keys
        if kid is not None:
            keys = _find_key(discovered.keys, kid)
        if keys is None:
            raise LoginRefused("the ID token is signed with a key its issuer does not publish")
        return self._check(id_token, keys, nonce)

    def _check(self, id_token: str, keys: jwk.JWK | jwk.JWKSet, nonce: str) -> dict[str, Any]:
        from jwcrypto import jwt
        from jwcrypto.common import JWException

        wanted = {"iss": self.issuer, "aud": self.client_id, "exp": None, "iat": None}
        try:
            token = jwt.JWT(
                algs=SIGNING_ALGORITHMS,
                check_claims=wanted,
                expected_type="JWS",
                strict_serialization=True,
            )
            token.leeway = LEEWAY
            token.deserialize(id_token, keys)
            claims = json.loads(token.claims)
        except jwt.JWTExpired:
            raise LoginRefused("the ID token has expired") from None
        except jwt.JWTInvalidClaimValue as exc:
            raise LoginRefused(f"the ID token's claims are not for this registry: {exc}") from None
        except jwt.JWTMissingClaim as exc:
            raise LoginRefused(f"the ID token lacks a claim: {exc}") from None
        except (JWException, ValueError, TypeError, KeyError) as exc:
            raise LoginRefused(f"the ID token is not valid: {exc}") from None
        if not isinstance(claims, dict):
            raise LoginRefused("the ID token's claims are not a JSON object")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise LoginRefused("the ID token was issued to another client (azp)")
        if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(
            claims["nonce"], nonce
        ):
            raise LoginRefused("the ID token's nonce is not this login's")
        return claims

    async def _with_userinfo(self, claims: dict[str, Any], access_token: Any) -> dict[str, Any]:
        """The ID token's claims, completed from the userinfo endpoint when the mapped ones
        are missing (many providers put groups and e-mail there only)."""
        mapping = self.config.claimMapping
        if mapping.username in claims and mapping.groups in claims:
            return claims
        endpoint = (await self._discovery()).document.get("userinfo_endpoint")
        if not isinstance(endpoint, str) or not isinstance(access_token, str):
            return claims
        info = await self._get_json(endpoint, token=access_token)
        if info.get("sub") != claims.get("sub"):  # OpenID Connect Core 5.3.2
            raise LoginRefused("the userinfo answer is about another user")
        return {**info, **claims}

    def _identity(self, claims: dict[str, Any]) -> LoggedIn:
        mapping = self.config.claimMapping
        user = claims.get(mapping.username)
        if not isinstance(user, str) or not user.strip() or len(user) > 256:
            raise LoginRefused(f"the provider gave no user name in the claim {mapping.username!r}")
        return LoggedIn(user, _groups(claims.get(mapping.groups)))

    # -- GitHub (OAuth2) --------------------------------------------------------------------
    async def _github_user(self, access_token: str) -> LoggedIn:
        emails = await self._get_json(f"{self.github_api}/user/emails", access_token, list)
        primary = [e.get("email") for e in emails if isinstance(e, dict) and e.get("primary")]
        if not primary or not isinstance(primary[0], str):
            raise LoginRefused("the GitHub account has no primary e-mail address")
        orgs = await self._get_json(f"{self.github_api}/user/orgs", access_token, list)
        groups = [o.get("login") for o in orgs if isinstance(o, dict)]
        return LoggedIn(primary[0], _groups(groups))

    # -- HTTP -------------------------------------------------------------------------------
    def _http(self, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=TIMEOUT, transport=self.transport, auth=auth)

    async def _get_json(self, url: str, token: str | None = None, shape: type = dict) -> Any:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._http() as client:
                answer = await client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"{url} cannot be reached: {exc}") from None
        if answer.status_code != 200:
            raise ProviderUnavailable(f"{url} answered {answer.status_code}")
        document = _json(answer, url)
        if not isinstance(document, shape):
            raise ProviderUnavailable(f"{url} did not answer a JSON {shape.__name__}")
        return document


def _json(answer: httpx.Response, url: str) -> Any:
    if len(answer.content) > MAX_DOCUMENT:
        raise ProviderUnavailable(f"{url} answered more than {MAX_DOCUMENT} bytes")
    try:
        return answer.json()
    except ValueError:
        raise ProviderUnavailable(f"{url} did not answer JSON") from None


def _json_object(answer: httpx.Response, url: str) -> dict[str, Any]:
    document = _json(answer, url)
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"{url} did not answer a JSON object")
    return document


def _string(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise ProviderUnavailable(f"the provider's answer has no {key}")
    return value


def _key_id(token: str) -> str | None:
    """The ``kid`` of a compact JWS's header; None when it names none (or is not one: the
    verification then says why)."""
    header = token.partition(".")[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except ValueError:
        return None
    kid = decoded.get("kid") if isinstance(decoded, dict) else None
    return kid if isinstance(kid, str) else None


def _find_key(keys: jwk.JWKSet, kid: str) -> jwk.JWK | None:
    found: jwk.JWK | None = keys.get_key(kid)
    return found


def _groups(value: Any) -> tuple[str, ...]:
    """A groups claim as zot reads it: a list (each item as text) or one non-empty string."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(str(item) for item in value if item is not None and str(item))
    return ()
