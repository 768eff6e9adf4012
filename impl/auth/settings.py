"""``http.auth`` as zot reads it: which authentication methods run, in zot's key names."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ocireg.auth.bearer import BearerConfig
from ocireg.auth.htpasswd import HtpasswdConfig
from ocireg.auth.ldap import LdapConfig

# zot keys ocireg does not implement: refused with a reason rather than silently ignored,
# since a registry that ignores part of its authentication setup lets the wrong people in
# or keeps the right ones out.
_UNSUPPORTED = {
    "openid": "OpenID login is not supported by ocireg",
    "sessionKeysFile": "browser sessions (OpenID) are not supported by ocireg",
    "sessionDriver": "browser sessions (OpenID) are not supported by ocireg",
    "secureSession": "browser sessions (OpenID) are not supported by ocireg",
}


class MTLSConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identityAttributes: list[str] = Field(default_factory=lambda: ["CommonName"])
    uriSanPattern: str | None = None
    uriSanIndex: int | None = None
    dnsSanIndex: int | None = None
    emailSanIndex: int | None = None


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    htpasswd: HtpasswdConfig | None = None
    ldap: LdapConfig | None = None
    bearer: BearerConfig | None = None
    apikey: bool = False
    failDelay: float = Field(0, ge=0, le=60, description="Seconds before a 401 or 403.")
    mtls: MTLSConfig | None = None
    openid: Any = None
    sessionKeysFile: Any = None
    sessionDriver: Any = None
    secureSession: Any = None

    @field_validator("openid", "sessionKeysFile", "sessionDriver", "secureSession")
    @classmethod
    def _unsupported(cls, value: Any, info: Any) -> None:
        if value is not None:
            raise ValueError(_UNSUPPORTED[info.field_name])
        return None

    def passwords_configured(self) -> bool:
        return self.htpasswd is not None or self.ldap is not None or self.apikey


def authenticating(auth: AuthConfig | None) -> bool:
    """Whether any authentication method is configured (else every caller is anonymous)."""
    if auth is None:
        return False
    return auth.passwords_configured() or auth.bearer is not None or auth.mtls is not None
