"""The :class:`Guard` a configuration asks for, or None when it asks for nothing."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ocireg.auth.apikeys import ApiKeys, is_api_key
from ocireg.auth.guard import CertificateIdentity, Guard, PasswordMethod, TokenVerifier
from ocireg.auth.policy import AccessControl
from ocireg.config import Config, HTTPConfig
from ocireg.configcheck import ConfigError
from ocireg.logs import event
from ocireg.meta.db import MetaDB

if TYPE_CHECKING:
    from ocireg.auth.openid import Provider
    from ocireg.auth.sessions import SessionStore
    from ocireg.auth.settings import AuthConfig

log = logging.getLogger("ocireg.auth")


def build_guard(
    config: Config, meta: MetaDB | None = None, source: str = "configuration"
) -> Guard | None:
    """The running authentication and access control; ConfigError naming the key when a file
    it needs cannot be used."""
    http = config.http
    auth = http.auth
    if not http.authenticating() and http.accessControl is None:
        return None
    access = AccessControl(http.accessControl, http.authenticating())
    certificates = _certificates(http)
    if auth is None:
        return Guard(access, http.realm, certificates=certificates)
    try:
        passwords = _password_methods(auth)
        tokens = _tokens(auth)
        openid = _openid(auth)
        sessions = _sessions(auth, meta) if openid else None
    except ConfigError as exc:
        raise ConfigError([f"{source}: {problem}" for problem in exc.problems]) from None
    keys = ApiKeys(meta) if auth.apikey and meta is not None else None
    if keys is not None:  # first: a key is told apart by its prefix, without a bcrypt round
        # an indexed lookup in the local SQLite file: on the loop; on PostgreSQL a round trip
        # over the network (behind the connection's lock): on the database's own threads
        assert meta is not None
        remote = meta.shared_by_instances
        method = PasswordMethod(
            "apikey", keys.check, runs="database" if remote else "loop", applies=is_api_key
        )
        passwords.insert(0, method)
    return Guard(
        access,
        http.realm,
        passwords,
        tokens,
        auth.failDelay,
        keys,
        certificates,
        sessions=sessions,
        openid=openid,
    )


def _certificates(http: HTTPConfig) -> CertificateIdentity | None:
    """Who a verified client certificate names, when the server asks for them. Not with
    registry tokens: zot's bearer mode looks at nothing but the token."""
    if not http.verifies_client_certificates():
        return None
    if http.auth is not None and http.auth.bearer is not None:
        return None
    from ocireg.auth.mtls import identity_from_certificate

    mtls = http.auth.mtls if http.auth is not None else None

    # Every request on a connection carries the same certificate (the same str object), so
    # a small cache parses each once rather than once per request.
    @functools.lru_cache(maxsize=1024)
    def identity(certificate: str) -> str | None:
        return identity_from_certificate(certificate, mtls)

    return identity


def _password_methods(auth: AuthConfig) -> list[PasswordMethod]:
    methods: list[PasswordMethod] = []
    if not auth.passwords_configured():
        return methods  # bearer mode: only the token counts (the start-up warning says so)
    if auth.htpasswd is not None:
        from ocireg.auth.htpasswd import HtpasswdError, HtpasswdFile

        try:
            users = HtpasswdFile(auth.htpasswd.path)
        except HtpasswdError as exc:
            raise ConfigError([f"http.auth.htpasswd.path: {exc}"]) from None
        methods.append(
            PasswordMethod("htpasswd", _no_groups(users.verify), _no_groups(users.remembered))
        )
    if auth.ldap is not None:
        from ocireg.auth.ldap import LdapAuth

        try:
            directory = LdapAuth(auth.ldap)
        except ValueError as exc:
            raise ConfigError([f"http.auth.ldap: {exc}"]) from None
        methods.append(
            PasswordMethod("ldap", _tolerant(directory.authenticate), directory.remembered)
        )
    return methods


def _tokens(auth: AuthConfig) -> TokenVerifier | None:
    if auth.bearer is None:
        return None
    from ocireg.auth.bearer import BearerAuth

    try:
        return BearerAuth(auth.bearer)
    except ValueError as exc:
        raise ConfigError([f"http.auth.bearer.cert: {exc}"]) from None


def _openid(auth: AuthConfig) -> dict[str, Provider]:
    """A relying party per configured provider; nothing is fetched from them yet (a provider
    that is down must not keep the registry from starting)."""
    if auth.openid is None:
        return {}
    try:
        from ocireg.auth.openid import Provider
    except ImportError as exc:
        raise ConfigError(
            [f"http.auth.openid: needs the openid extra: pip install 'ocireg[openid]' ({exc})"]
        ) from None

    providers = {}
    for name, provider in auth.openid.providers.items():
        client_id, secret = provider.clientid, provider.clientsecret
        if provider.credentialsFile is not None:
            client_id, secret = _client_credentials(name, provider.credentialsFile)
        assert client_id is not None  # the configuration's check requires one
        providers[name] = Provider(name, provider, client_id, secret or None)
    return providers


def _client_credentials(name: str, path: str) -> tuple[str, str | None]:
    """zot's OpenID credentials file: JSON ``{"clientid", "clientsecret"}``."""
    key = f"http.auth.openid.providers.{name}.credentialsFile"
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError([f"{key}: cannot read {path}: {exc}"]) from None
    if not isinstance(document, dict) or set(document) - {"clientid", "clientsecret"}:
        raise ConfigError([f'{key}: {path} must hold {{"clientid", "clientsecret"}}'])
    client_id, secret = document.get("clientid"), document.get("clientsecret")
    if not isinstance(client_id, str) or not client_id or not isinstance(secret, str | None):
        raise ConfigError([f"{key}: {path}: clientid must be a non-empty string"])
    return client_id, secret


def _sessions(auth: AuthConfig, meta: MetaDB | None) -> SessionStore:
    """The browser sessions OpenID login makes, in the meta DB file (the UI reads the same)."""
    from ocireg.auth.sessionkeys import read_session_keys, warn_unused_session_keys
    from ocireg.auth.sessions import SessionStore

    keys = read_session_keys(auth.sessionKeysFile) if auth.sessionKeysFile else None
    if keys is not None and meta is not None:  # the running app's, not start-up's file check
        warn_unused_session_keys(keys)
    return SessionStore.of(meta, keys)


def _no_groups(verify: Callable[[str, str], bool]) -> Callable[[str, str], list[str] | None]:
    return lambda user, password: [] if verify(user, password) else None


def _tolerant(
    authenticate: Callable[[str, str], list[str] | None],
) -> Callable[[str, str], list[str] | None]:
    """A directory that cannot be reached authenticates nobody (the next method may), and
    says so in the log rather than failing the request with a 500."""
    from ocireg.auth.ldap import LdapUnavailable

    def check(user: str, password: str) -> list[str] | None:
        try:
            return authenticate(user, password)
        except LdapUnavailable as exc:
            event(log, logging.ERROR, "ldap unavailable", error=str(exc))
            return None

    return check
