"""``http.auth`` as zot reads it: which authentication methods run, in zot's key names."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ocireg.auth.bearerconfig import BearerConfig
from ocireg.auth.htpasswd import HtpasswdConfig
from ocireg.auth.ldapconfig import LdapConfig
from ocireg.auth.openidconfig import OpenIDConfig

SESSION_DRIVERS = ("local",)  # redis follows with the scale-out work


# zot's identity attributes and the other names it accepts for them, any case.
IDENTITY_ATTRIBUTES = {
    "commonname": "CommonName",
    "cn": "CommonName",
    "subject": "Subject",
    "dn": "Subject",
    "email": "Email",
    "rfc822name": "Email",
    "uri": "URI",
    "url": "URI",
    "dnsname": "DNSName",
    "dns": "DNSName",
}


class MTLSConfig(BaseModel):
    """Where a client certificate's identity comes from: ``identityAttributes`` in order, the
    first that yields one wins. Names are stored in zot's canonical spelling."""

    model_config = ConfigDict(extra="forbid")
    identityAttributes: list[str] = Field(default_factory=lambda: ["CommonName"])
    uriSanPattern: str | None = None
    uriSanIndex: int | None = Field(None, ge=0)
    dnsSanIndex: int | None = Field(None, ge=0)
    emailSanIndex: int | None = Field(None, ge=0)

    @field_validator("identityAttributes")
    @classmethod
    def _known_attributes(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name.strip().lower() not in IDENTITY_ATTRIBUTES]
        if unknown:
            known = ", ".join(sorted(set(IDENTITY_ATTRIBUTES.values())))
            raise ValueError(f"unsupported identity attribute {unknown[0]!r}: use {known}")
        # An empty list is zot's default too.
        return [IDENTITY_ATTRIBUTES[name.strip().lower()] for name in names] or ["CommonName"]

    @field_validator("uriSanPattern")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        # Refused at load rather than on every request: zot would fail each URI lookup.
        if pattern is None:
            return None
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        if groups < 1:
            raise ValueError(f"{pattern!r} needs a capture group: its first is the identity")
        return pattern


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    htpasswd: HtpasswdConfig | None = None
    ldap: LdapConfig | None = None
    bearer: BearerConfig | None = None
    apikey: bool = False
    failDelay: float = Field(0, ge=0, le=60, description="Seconds before a 401 or 403.")
    mtls: MTLSConfig | None = None
    openid: OpenIDConfig | None = None
    # The web UI's sessions (extensions.ui): a JSON file whose hashKey signs the session
    # cookie, where sessions are kept, and whether the cookie is Secure (default: under TLS).
    sessionKeysFile: str | None = None
    sessionDriver: str | None = None
    secureSession: bool | None = None

    @field_validator("sessionDriver", mode="before")
    @classmethod
    def _session_driver(cls, value: Any) -> str | None:
        # zot's form is a mapping with a name ({name: local}); a bare name is accepted too
        if isinstance(value, dict):
            if set(value) - {"name"}:
                raise ValueError("the local session driver takes no settings but its name")
            value = value.get("name")
        if value is None:
            return None
        if value not in SESSION_DRIVERS:
            raise ValueError(
                f"session driver {value!r} is not supported: use local (sessions in the "
                "meta DB, shared by every worker process)"
            )
        return str(value)

    @model_validator(mode="after")
    def _keys_with_openid(self) -> AuthConfig:
        # As zot: OpenID turns API keys on, since a key is how a command-line client acts as
        # a user who logs in only through a browser.
        if self.openid is None:
            return self
        if self.bearer is not None:
            raise ValueError(
                "bearer: registry tokens are the only method when bearer is set; remove openid"
            )
        if "apikey" in self.model_fields_set and not self.apikey:
            raise ValueError(
                "apikey: OpenID login turns API keys on (as in zot): they are how clients "
                "act as users who log in with OpenID; remove apikey: false"
            )
        self.apikey = True
        return self

    @model_validator(mode="after")
    def _tokens_alone(self) -> AuthConfig:
        # zot's bearer mode looks at nothing but the token; API keys next to it would let
        # token holders mint credentials the token service never vouched for. htpasswd and
        # LDAP are accepted as zot accepts them, unused, with a warning (see unused_in_bearer_mode).
        if self.bearer is not None and self.apikey:
            raise ValueError(
                "bearer: registry tokens are the only method when bearer is set (as in zot); "
                "remove apikey"
            )
        return self

    def passwords_configured(self) -> bool:
        """Whether Basic credentials are checked: never in bearer mode."""
        if self.bearer is not None:
            return False
        return self.htpasswd is not None or self.ldap is not None or self.apikey

    def unused_in_bearer_mode(self) -> list[str]:
        """The password methods configured next to ``bearer``, which nothing consults."""
        if self.bearer is None:
            return []
        return [name for name in ("htpasswd", "ldap") if getattr(self, name) is not None]


def authenticating(auth: AuthConfig | None, *, client_certificates: bool) -> bool:
    """Whether any authentication method is configured (else every caller is anonymous).
    ``client_certificates``: the server verifies client certificates (``http.tls.cacert``),
    which authenticates on its own, as in zot, with or without ``http.auth``."""
    if client_certificates:
        return True
    if auth is None:
        return False
    return auth.passwords_configured() or auth.bearer is not None or auth.openid is not None
