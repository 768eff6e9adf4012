"""The running authentication and access control: who a request is from, and whether the
operation it calls lets them in.

Answers follow zot and the distribution spec: 401 ``UNAUTHORIZED`` with a challenge
(``Basic realm=...``, or ``Bearer realm=...,service=...,scope=...`` when tokens are configured)
for a caller who did not (or could not) authenticate, 403 ``DENIED`` for one who did but may
not. ``failDelay`` seconds pass before an answer to wrong credentials and before a 403, to slow
guessing down; a plain challenge (no credentials yet, or a token that lacks a scope) is how
every client starts, and goes out at once.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ocireg.auth.access import Rule
from ocireg.auth.apikeys import ApiKeys
from ocireg.auth.identity import ANONYMOUS, Identity, identity_of
from ocireg.auth.policy import AccessControl
from ocireg.auth.sessions import COOKIE as SESSION_COOKIE
from ocireg.auth.tokenerror import TokenError
from ocireg.errors import ErrorCode, RegistryError
from ocireg.names import name_problem
from ocireg.registry.offloop import run_database_work, run_password_check

if TYPE_CHECKING:
    from ocireg.auth.openid import Provider
    from ocireg.auth.sessions import SessionStore

UI_CLIENT_HEADER = b"x-zot-api-client"  # zot's web UI marks its requests with this
UI_CLIENT = b"zot-ui"

# A password method: the user's groups from its directory when the password is right, else
# None. Synchronous (bcrypt, LDAP round trips): called in a thread.
PasswordCheck = Callable[[str, str], "list[str] | None"]
# Who a verified client certificate (PEM) names, None when it names nobody. Fast (a parse,
# cached): called on the event loop.
CertificateIdentity = Callable[[str], "str | None"]


class TokenVerifier(Protocol):
    def verify(self, token: str) -> Any: ...  # a Grant; raises on a bad token

    def challenge(self, scopes: list[str], error: str | None = None) -> str: ...


@dataclass(frozen=True)
class PasswordMethod:
    name: str  # what Identity.method says: htpasswd, ldap, apikey
    check: PasswordCheck
    # A check that does no slow work (no hashing, no network): the groups of a success it
    # remembers, else None. Tried on the event loop first, so a client's thousandth request
    # with the same password does not pay a thread hop.
    quick: PasswordCheck | None = None
    # Where the check runs: "thread" (hashing, a directory): a password thread, of a pool
    # only password checks use (``ocireg.registry.offloop``), so no other work waiting on
    # shared threads queues a login behind it; "loop" when it is cheap (an indexed lookup of
    # the local SQLite file), no thread; "database" when it asks a database across the network
    # (API keys in PostgreSQL): a thread of the database's own, so a silent server holds up
    # only the requests that wait for it.
    runs: Literal["thread", "loop", "database"] = "thread"
    # Whether a password can be this method's at all, told at no cost (an API key's prefix):
    # a password it cannot be skips the method, and with it a thread hop.
    applies: Callable[[str], bool] | None = None


class Guard:
    def __init__(
        self,
        access: AccessControl,
        realm: str,
        passwords: Iterable[PasswordMethod] = (),
        tokens: TokenVerifier | None = None,
        fail_delay: float = 0.0,
        api_keys: ApiKeys | None = None,
        certificates: CertificateIdentity | None = None,
        sessions: SessionStore | None = None,
        openid: Mapping[str, Provider] | None = None,
    ) -> None:
        self.access = access
        self.realm = realm
        self.passwords = list(passwords)
        self.tokens = tokens
        self.fail_delay = fail_delay
        self.api_keys = api_keys  # None unless http.auth.apikey
        self.certificates = certificates  # None: client certificates name nobody
        # Browser sessions the API honours (made by OpenID login and the UI's login form);
        # None when the registry keeps none of its own (no http.auth.openid).
        self.sessions = sessions
        self.openid = dict(openid or {})  # zot's provider name: its relying party

    # -- authentication -------------------------------------------------------------------
    async def identify(
        self, headers: list[tuple[bytes, bytes]], certificate: str | None = None
    ) -> Identity:
        """The caller's identity from its Authorization header or else its verified client
        certificate (PEM); RegistryError (401) when the credentials it sent are wrong.

        zot's order: an Authorization header a configured method can check is an explicit
        attempt to log in and decides alone (a wrong password is not rescued by a
        certificate); only without one does the certificate name the user."""
        if self.certificates is None:
            certificate = None
        if not self.passwords and self.tokens is None and self.certificates is None:
            # No authentication at all (accessControl alone): a header is ignored, as zot
            # does, rather than refusing a client that always sends its stored credentials.
            return ANONYMOUS
        values = [value for name, value in headers if name.lower() == b"authorization"]
        if len(values) > 1:
            raise await self._unauthorized("send one Authorization header")
        if values:
            scheme, _, credentials = values[0].decode("latin-1").strip().partition(" ")
            if certificate is None or self._checks(scheme):
                return await self._authorization(scheme.lower(), credentials.strip())
        if certificate is not None:
            return await self._certificate(certificate)
        return await self._session(headers)

    async def _session(self, headers: list[tuple[bytes, bytes]]) -> Identity:
        """The user of the session cookie, for a request marked as a UI's (zot's rule: the
        custom header is what a page elsewhere cannot send without CORS, so a cookie alone
        never authenticates an API call); anonymous otherwise, as an expired session is."""
        if self.sessions is None or (UI_CLIENT_HEADER, UI_CLIENT) not in headers:
            return ANONYMOUS
        jar: SimpleCookie = SimpleCookie()
        for name, value in headers:
            if name == b"cookie":
                try:
                    jar.load(value.decode("latin-1"))
                except CookieError:
                    return ANONYMOUS
        morsel = jar.get(SESSION_COOKIE)
        session = await self.sessions.find(morsel.value if morsel is not None else None)
        if session is None:
            return ANONYMOUS
        return Identity(session.user, session.method, frozenset(session.groups))

    def _checks(self, scheme: str) -> bool:
        """Whether a configured method checks credentials of this scheme (else zot ignores
        the header when a client certificate can speak for the caller)."""
        scheme = scheme.lower()
        return (scheme == "basic" and bool(self.passwords)) or (
            scheme == "bearer" and self.tokens is not None
        )

    async def _authorization(self, scheme: str, credentials: str) -> Identity:
        if scheme == "basic":
            return await self._basic(credentials)
        if scheme == "bearer" and self.tokens is not None:
            return await self._bearer(credentials)
        # not the scheme itself in the answer: a client that forgot the scheme sent its secret
        raise await self._unauthorized("unsupported authorization scheme")

    async def _certificate(self, certificate: str) -> Identity:
        assert self.certificates is not None
        user = self.certificates(certificate)
        if user is None:  # verified, but the configured attributes name nobody: as zot, 401
            raise await self._unauthorized("the client certificate names no user")
        return Identity(user, "mtls", self.access.groups_of(user))

    async def _basic(self, credentials: str) -> Identity:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII base64 text
            raise await self._unauthorized("malformed basic credentials") from None
        user, colon, password = decoded.partition(":")
        if not colon:
            raise await self._unauthorized("malformed basic credentials")
        if not user and not password:  # "Og==": what some clients send for "no credentials"
            return ANONYMOUS
        if user and password:
            for method in self.passwords:
                if method.applies is not None and not method.applies(password):
                    continue
                if method.runs == "loop":
                    groups = method.check(user, password)
                else:
                    groups = method.quick(user, password) if method.quick else None
                    if groups is None and method.runs == "database":
                        groups = await run_database_work(True, method.check, user, password)
                    elif groups is None:
                        groups = await run_password_check(method.check, user, password)
                if groups is not None:
                    return Identity(user, method.name, self.access.groups_of(user, groups))
        raise await self._unauthorized("invalid username or password")

    async def _bearer(self, token: str) -> Identity:
        assert self.tokens is not None
        try:
            grant = self.tokens.verify(token)
        except TokenError as exc:  # its text is a short reason, safe to show
            raise await self._unauthorized(str(exc), error="invalid_token") from None
        return Identity(grant.subject or None, "bearer", grant=grant)

    # -- authorization --------------------------------------------------------------------
    async def authorize(
        self, scope: Mapping[str, Any], rule: Rule, path: Mapping[str, str]
    ) -> None:
        """Let the request through to its operation, or raise the 401 or 403 it gets."""
        identity = identity_of(scope)
        if rule.kind == "repository":
            assert rule.action is not None and rule.parameter is not None
            await self.require(identity, rule.action, path[rule.parameter])
        elif not self._lets_in(identity, rule):
            raise await self.refusal(identity, [])

    def _lets_in(self, identity: Identity, rule: Rule) -> bool:
        if rule.kind == "authenticated":
            return not identity.anonymous
        if rule.kind == "metrics":
            return self.access.may_read_metrics(identity)
        if rule.kind == "admin":
            return self.access.may_administer(identity)
        if rule.kind == "login" and self.access.authenticating:
            # GET /v2/ challenges every caller without credentials, even where anonymous
            # reads are allowed (as distribution does, unlike zot): clients such as skopeo,
            # podman and docker send credentials only if this answer asks for them, so a 200
            # here would leave them unable to push. A client without credentials goes on
            # anonymously after the challenge.
            return not identity.anonymous or identity.grant is not None
        return True  # anyone, listing (the handler filters), login without authentication

    async def require(self, identity: Identity, action: str, repo: str) -> None:
        """Raise the refusal unless ``identity`` may do ``action`` on ``repo``."""
        if not self.access.allows(identity, action, repo):
            # authorization comes before validation: a name that is not one gets no scope
            scopes = [token_scope(repo, action)] if name_problem(repo) is None else []
            raise await self.refusal(identity, scopes)

    async def refusal(self, identity: Identity, scopes: list[str]) -> RegistryError:
        """The 401 (a challenge, at once: it is how every client starts) or the 403 (after
        failDelay) that ``identity`` gets for lacking ``scopes``."""
        if identity.grant is not None:  # the token lacks the scope: the client asks for more
            return self._challenge("insufficient scope", scopes, "insufficient_scope")
        if identity.anonymous:
            return self._challenge("authentication required", scopes)
        return await self.deny()

    async def deny(self, detail: dict[str, str] | None = None) -> RegistryError:
        """403 DENIED, after failDelay, for an authenticated caller."""
        await self._delay()
        return RegistryError(ErrorCode.DENIED, detail)

    async def _unauthorized(
        self, why: str, scopes: list[str] | None = None, error: str | None = None
    ) -> RegistryError:
        """401 for credentials that are wrong, after failDelay."""
        await self._delay()
        return self._challenge(why, scopes, error)

    def _challenge(
        self, why: str, scopes: list[str] | None = None, error: str | None = None
    ) -> RegistryError:
        if self.tokens is not None:
            challenge = self.tokens.challenge(scopes or [], error)
        else:
            challenge = f'Basic realm="{self.realm}"'
        return RegistryError(
            ErrorCode.UNAUTHORIZED, {"reason": why}, headers={"WWW-Authenticate": challenge}
        )

    async def _delay(self) -> None:
        if self.fail_delay > 0:
            await asyncio.sleep(self.fail_delay)


def token_scope(repo: str, action: str) -> str:
    """The token scope a client should ask for: distribution's pull, push and delete."""
    wanted = {"read": "pull", "delete": "delete"}.get(action, "pull,push")
    return f"repository:{repo}:{wanted}"
