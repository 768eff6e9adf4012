"""LDAP authentication, as zot reads ``http.auth.ldap``.

The flow is zot's: bind as the service account, look the user up under ``baseDN`` by
``(&(<userAttribute>=<user>)<userFilter>)``, require exactly one entry, then bind as that
entry's DN with the user's password. The user's groups are the values of
``userGroupAttribute`` on that entry (``memberOf`` and the like); a value that is a DN
contributes the value of its first RDN (``cn=devs,ou=groups,...`` is ``devs``).

The outcome has three kinds, because the caller answers them differently: groups (the
credentials are right), ``None`` (wrong password, unknown or ambiguous user: 401) and
:class:`LdapUnavailable` (the directory cannot be asked: not the user's fault, so the
registry logs it as an error; the request is then refused unless another method vouches).

Every call is synchronous and opens its own connection, so concurrent calls from threads share
nothing but the success cache (locked) and the TLS context (which is safe to share).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPInvalidDnError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from ocireg.auth.ldapconfig import LdapConfig

__all__ = ["LdapAuth", "LdapConfig", "LdapUnavailable"]

CONNECT_TIMEOUT = 5.0  # seconds to open the TCP connection
RECEIVE_TIMEOUT = 10  # seconds to wait for any one answer (ldap3 packs it as an integer)
CACHE_TTL = 60.0  # seconds a successful authentication is reused
CACHE_MAX_ENTRIES = 4096

# LDAP result codes (RFC 4511 section 4.1.9) that this module tells apart.
_SUCCESS = 0
_SIZE_LIMIT_EXCEEDED = 4
_BUSY = 51
_UNAVAILABLE = 52


class LdapUnavailable(Exception):
    """The directory cannot answer: unreachable, TLS failure, the service bind or the search
    failed. Not the user's fault: the caller logs it (ocireg.auth.build), apart from a wrong
    password."""


def user_filter(config: LdapConfig, user: str) -> str:
    """The lookup filter for ``user``, its value escaped (RFC 4515) so that ``*`` or ``)(`` in
    a user name is matched literally instead of widening the search."""
    term = f"({config.userAttribute}={escape_filter_chars(user)})"
    return f"(&{term}{config.userFilter})" if config.userFilter else term


def group_name(value: str) -> str:
    """``cn=devs,ou=groups,dc=example,dc=org`` is ``devs``; a value that is no DN is itself."""
    try:
        components = parse_dn(value)
    except LDAPInvalidDnError:
        return value
    return _unescape_dn_value(components[0][1]) if components else value


def _unescape_dn_value(value: str) -> str:
    r"""RFC 4514: ``\,`` stands for ``,`` and ``\c3\a9`` for the UTF-8 bytes of ``é``."""
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        pair = value[index + 1 : index + 3]
        if char == "\\" and len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
            out += bytes.fromhex(pair)
            index += 3
        elif char == "\\" and index + 1 < len(value):
            out += value[index + 1].encode()
            index += 2
        else:
            out += char.encode()
            index += 1
    return out.decode(errors="replace")


def read_credentials(path: str) -> tuple[str, str]:
    """``(bindDN, bindPassword)`` from a zot credentials file."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise ValueError(f"LDAP credentialsFile {path}: cannot read: {err}") from err
    except ValueError as err:
        raise ValueError(f"LDAP credentialsFile {path}: not JSON: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(
            f'LDAP credentialsFile {path}: want {{"bindDN": ..., "bindPassword": ...}}'
        )
    bind_dn, password = data.get("bindDN"), data.get("bindPassword", "")
    if not isinstance(bind_dn, str) or not bind_dn:
        raise ValueError(f"LDAP credentialsFile {path}: bindDN must be a non-empty string")
    if not isinstance(password, str):
        raise ValueError(f"LDAP credentialsFile {path}: bindPassword must be a string")
    return bind_dn, password


class _SuccessCache:
    """Recent successful authentications, so a client sending Basic auth on every request does
    not cost an LDAP round trip each time.

    Keys are the user and an HMAC of the password under a per-process random key: the plain
    password is never kept, and a wrong password has a different key so it can only miss.
    """

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._salt = secrets.token_bytes(32)
        self._entries: dict[tuple[str, bytes], tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def _key(self, user: str, password: str) -> tuple[str, bytes]:
        return user, hmac.new(self._salt, password.encode(), hashlib.sha256).digest()

    def get(self, user: str, password: str) -> list[str] | None:
        key = self._key(user, password)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, groups = entry
            if self._clock() >= expires:
                del self._entries[key]
                return None
            return list(groups)

    def put(self, user: str, password: str, groups: list[str]) -> None:
        if self._ttl <= 0:
            return
        key = self._key(user, password)
        now = self._clock()
        with self._lock:
            self._entries.pop(key, None)  # re-insert so dict order stays oldest-first
            self._entries[key] = (now + self._ttl, list(groups))
            if len(self._entries) > CACHE_MAX_ENTRIES:
                self._evict(now)

    def _evict(self, now: float) -> None:
        for key, (expires, _groups) in list(self._entries.items()):
            if expires <= now:
                del self._entries[key]
        while len(self._entries) > CACHE_MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]


class LdapAuth:
    """Checks user name and password against an LDAP directory; see the module docstring."""

    def __init__(
        self,
        config: LdapConfig,
        *,
        cache_ttl: float = CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        # zot reads the credentials file when one is named; the inline keys are its older form.
        if config.credentialsFile:
            self._bind_dn, self._bind_password = read_credentials(config.credentialsFile)
        else:
            self._bind_dn, self._bind_password = config.bindDN or "", config.bindPassword or ""
        self._tls = _tls(config)
        self._cache = _SuccessCache(cache_ttl, clock)

    def authenticate(self, user: str, password: str) -> list[str] | None:
        """The user's groups when the password is right, else None.

        Raises LdapUnavailable when the directory cannot be asked.
        """
        # An empty password would make the user bind an "unauthenticated bind" (RFC 4513
        # 5.1.2), which servers may answer with success: never let it reach the server.
        if not user or not password:
            return None
        cached = self._cache.get(user, password)
        if cached is not None:
            return cached
        groups = self._ask_directory(user, password)
        if groups is not None:
            self._cache.put(user, password, groups)
        return groups

    def remembered(self, user: str, password: str) -> list[str] | None:
        """The groups of a success still remembered, without asking the directory (None:
        not remembered, not a refusal)."""
        return self._cache.get(user, password) if user and password else None

    def _ask_directory(self, user: str, password: str) -> list[str] | None:
        conn = self._connection()
        try:
            self._bind_service(conn)
            found = self._find_user(conn, user)
            if found is None:
                return None
            user_dn, groups = found
            return groups if _bind_as(conn, user_dn, password) else None
        except LDAPException as err:
            # Refused, timed out, TLS handshake or certificate check failed, connection dropped.
            # ldap3's last_error says it plainly; its exceptions wrap it in tuple reprs.
            reason = conn.last_error or str(err)
            raise LdapUnavailable(f"LDAP server {self._where()}: {reason}") from err
        finally:
            _close(conn)

    def _where(self) -> str:
        return f"{self.config.address}:{self.config.port}"

    def _connection(self) -> ldap3.Connection:
        # A Server per call: ldap3 keeps per-server state (resolved addresses) that threads
        # calling at once should not share.
        return ldap3.Connection(
            _server(self.config, self._tls),
            user=self._bind_dn if self._bind_password else None,
            password=self._bind_password or None,
            # zot binds anonymously when the service account has no password.
            authentication=ldap3.SIMPLE if self._bind_password else ldap3.ANONYMOUS,
            receive_timeout=RECEIVE_TIMEOUT,
            read_only=True,
            auto_referrals=False,
        )

    def _bind_service(self, conn: ldap3.Connection) -> None:
        conn.open(read_server_info=False)
        if self.config.startTLS:
            conn.start_tls(read_server_info=False)
        if not conn.bind(read_server_info=False):
            raise LdapUnavailable(
                f"LDAP service bind as {self._bind_dn!r} on {self._where()} failed: "
                + _describe(conn.result)
            )

    def _find_user(self, conn: ldap3.Connection, user: str) -> tuple[str, list[str]] | None:
        """The DN and groups of the one entry naming ``user``; None for none or several."""
        group_attribute = self.config.userGroupAttribute
        conn.search(
            self.config.baseDN,
            user_filter(self.config, user),
            search_scope=ldap3.SUBTREE if self.config.subtreeSearch else ldap3.LEVEL,
            attributes=[group_attribute] if group_attribute else [ldap3.NO_ATTRIBUTES],
            # Two are enough to know the name is ambiguous; no need to fetch more.
            size_limit=2,
        )
        code = conn.result.get("result")
        if code == _SIZE_LIMIT_EXCEEDED:
            return None
        if code != _SUCCESS:
            raise LdapUnavailable(
                f"LDAP search under {self.config.baseDN!r} on {self._where()} failed: "
                + _describe(conn.result)
            )
        entries = [item for item in conn.response or [] if item.get("type") == "searchResEntry"]
        if len(entries) != 1:
            return None
        entry = entries[0]
        return entry["dn"], _groups(entry.get("raw_attributes", {}), group_attribute)


def _groups(raw: dict[str, list[bytes]], attribute: str | None) -> list[str]:
    if not attribute:
        return []
    # The server spells the attribute its own way (memberOf for memberof): match it caselessly.
    values = next((v for name, v in raw.items() if name.lower() == attribute.lower()), [])
    return [group_name(value.decode(errors="replace")) for value in values]


def _describe(result: dict[str, object]) -> str:
    return f"{result.get('description')} {result.get('message') or ''}".rstrip()


def _close(conn: ldap3.Connection) -> None:
    # Unbinding sends a last message: on a dead connection that fails, and nothing is lost.
    with contextlib.suppress(LDAPException, OSError):
        conn.unbind()
    # When connecting or the TLS handshake failed, ldap3 leaves the socket open and the
    # connection marked closed, so unbind does not close it.
    if conn.socket is not None:
        with contextlib.suppress(OSError):
            conn.socket.close()


def _bind_as(conn: ldap3.Connection, dn: str, password: str) -> bool:
    """Whether the directory accepts ``password`` for ``dn``, on the searching connection."""
    if conn.rebind(user=dn, password=password, read_server_info=False):
        return True
    # Busy or unavailable is the directory's trouble, not a wrong password.
    if conn.result.get("result") in (_BUSY, _UNAVAILABLE):
        raise LdapUnavailable(f"LDAP bind as {dn!r}: {_describe(conn.result)}")
    return False


def _server(config: LdapConfig, tls: ldap3.Tls | None) -> ldap3.Server:
    return ldap3.Server(
        config.address,
        port=config.port,
        use_ssl=_uses_ldaps(config),
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=CONNECT_TIMEOUT,
    )


def _uses_ldaps(config: LdapConfig) -> bool:
    # zot: StartTLS upgrades a plain connection; neither insecure nor startTLS means LDAPS.
    return not config.insecure and not config.startTLS


def _tls(config: LdapConfig) -> ldap3.Tls | None:
    """TLS settings for LDAPS or StartTLS, None for plain LDAP. Reads caCert now, so a bad file
    is an error at startup rather than at every login."""
    if not (_uses_ldaps(config) or config.startTLS):
        return None
    try:
        context = ssl.create_default_context(cafile=config.caCert)
    except (OSError, ssl.SSLError) as err:
        raise ValueError(f"LDAP caCert {config.caCert}: {err}") from err
    if config.skipVerify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return _Tls(context)


class _Tls(ldap3.Tls):  # type: ignore[misc]  # ldap3 is untyped
    """ldap3's TLS settings, the handshake done with our own SSLContext.

    Left to itself ldap3 verifies nothing (its default is CERT_NONE), and when asked to, checks
    the certificate's name after the handshake with the deprecated ssl.match_hostname, leaking
    the TLS socket when the name is wrong. Here OpenSSL checks chain and name (the configured
    address, as zot's Go client does) during the handshake, and a failed handshake closes its
    socket.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(validate=context.verify_mode)
        self._context = context

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        # ldap3 calls this for LDAPS right after connecting and for StartTLS after the
        # server's go-ahead; it expects the TLS socket back in connection.socket.
        connection.socket = self._context.wrap_socket(
            connection.socket,
            server_hostname=connection.server.host,
            do_handshake_on_connect=do_handshake,
        )
