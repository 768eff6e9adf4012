"""``http.auth.openid``: zot's OpenID login settings, apart from :mod:`ocireg.auth.openid` so that
reading a configuration does not import the HTTP and JOSE libraries.

zot's provider names are the only ones it accepts: ``oidc`` (any OpenID Connect provider, found
through its issuer's discovery document), ``google`` and ``gitlab`` (OpenID Connect at their
public issuers) and ``github`` (OAuth2, not OpenID Connect: the user's primary e-mail address
and organisations come from GitHub's API).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ocireg.defaults import empty_list

# Where zot's named providers live when the configuration does not say.
WELL_KNOWN_ISSUERS = {"google": "https://accounts.google.com", "gitlab": "https://gitlab.com"}
GITHUB_AUTH_URL = "https://github.com/login/oauth/authorize"
GITHUB_TOKEN_URL = "https://github.com/login/oauth/access_token"
PROVIDERS = ("oidc", "google", "gitlab", "github")
DEFAULT_USERNAME_CLAIM = "email"  # zot's default
DEFAULT_GROUPS_CLAIM = "groups"


class ClaimMapping(BaseModel):
    """Which claims name the user and their groups (zot's ``claimMapping``)."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(DEFAULT_USERNAME_CLAIM, min_length=1, max_length=256)
    groups: str = Field(DEFAULT_GROUPS_CLAIM, min_length=1, max_length=256)


class OpenIDProvider(BaseModel):
    """One provider under ``http.auth.openid.providers``, with zot's keys."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=100, description="Shown on the login button.")
    clientid: str | None = None
    clientsecret: str | None = None
    credentialsFile: str | None = Field(None, description='JSON {"clientid", "clientsecret"}.')
    keypath: str | None = None
    issuer: str | None = None
    authurl: str | None = None
    tokenurl: str | None = None
    scopes: list[str] = Field(default_factory=empty_list)
    claimMapping: ClaimMapping = Field(default_factory=ClaimMapping)

    @field_validator("keypath")
    @classmethod
    def _no_key_path(cls, value: str | None) -> None:
        # zot signs a JWT client assertion with this key (private_key_jwt); ocireg
        # authenticates to the token endpoint with the client secret only.
        if value:
            raise ValueError(
                "keypath (private_key_jwt client authentication) is not supported: "
                "use clientsecret, or neither for a public client with PKCE"
            )
        return None

    @field_validator("issuer", "authurl", "tokenurl")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")


class OpenIDConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    providers: dict[str, OpenIDProvider] = Field(default_factory=dict)
    # Origins (scheme://host[:port]) besides the registry's own that callback_ui may send a
    # browser back to after logging in.
    callbackAllowOrigins: list[str] = Field(default_factory=empty_list)

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, providers: dict[str, OpenIDProvider]) -> dict[str, OpenIDProvider]:
        for name, provider in providers.items():
            _check_provider(name, provider)
        return providers

    @field_validator("callbackAllowOrigins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        return [origin.rstrip("/") for origin in origins]

    @model_validator(mode="after")
    def _some_provider(self) -> OpenIDConfig:
        if not self.providers:
            raise ValueError("providers: name at least one of " + ", ".join(PROVIDERS))
        return self


def _check_provider(name: str, provider: OpenIDProvider) -> None:
    if name not in PROVIDERS:
        raise ValueError(f"provider {name!r} is not one of zot's: {', '.join(PROVIDERS)}")
    if provider.credentialsFile is None and not provider.clientid:
        raise ValueError(f"{name}: clientid (or credentialsFile) is required")
    if provider.credentialsFile is not None and (provider.clientid or provider.clientsecret):
        raise ValueError(f"{name}: give credentialsFile or clientid/clientsecret, not both")
    if name == "oidc" and provider.issuer is None:
        raise ValueError("oidc: issuer is required (its discovery document tells the rest)")
    if name != "github" and (provider.authurl or provider.tokenurl):
        # zot reads these for github only; an OpenID provider's endpoints come from discovery
        raise ValueError(f"{name}: authurl and tokenurl apply to github only")
    if name == "github" and provider.issuer is not None:
        raise ValueError("github: issuer does not apply (GitHub login is OAuth2, not OpenID)")
    if name == "github" and bool(provider.authurl) != bool(provider.tokenurl):
        raise ValueError("github: give authurl and tokenurl together")


def issuer_of(name: str, provider: OpenIDProvider) -> str | None:
    """The provider's issuer: configured, else zot's well-known one; None for github."""
    return provider.issuer or WELL_KNOWN_ISSUERS.get(name)
