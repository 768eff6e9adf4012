"""``http.auth.bearer``'s settings, apart from :mod:`ocireg.auth.bearer` so that reading a
configuration imports neither PyJWT nor cryptography. The error a token is refused with is in
:mod:`ocireg.auth.tokenerror`, which the guard imports at every start."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ocireg.auth.tokenerror import TokenError, is_control

__all__ = ["BearerConfig", "TokenError", "is_control"]

_UNSUPPORTED_SOURCES = {
    "oidc": "OIDC workload identity tokens are not implemented by ocireg; only tokens "
    "signed by the key in bearer.cert are verified",
    "awsSecretsManager": "reading the token key from AWS Secrets Manager is not implemented "
    "by ocireg; give the key as a file in bearer.cert",
    "upstreamTokenEndpoint": "proxying token requests to an upstream token service is not "
    "implemented by ocireg; point bearer.realm at the token service itself",
}


class BearerConfig(BaseModel):
    """``http.auth.bearer`` in zot's configuration."""

    model_config = ConfigDict(extra="forbid")

    realm: str = Field(min_length=1, description="URL of the token server clients are sent to.")
    service: str = Field(min_length=1, description="This registry's name: the tokens' audience.")
    cert: str = Field(min_length=1, description="PEM certificate or public key of the signer.")

    @field_validator("realm", "service")
    @classmethod
    def _printable(cls, value: str) -> str:
        # Both are echoed into the WWW-Authenticate header: a CR or LF would split it.
        if any(is_control(char) for char in value):
            raise ValueError("must not contain control characters")
        return value

    # zot's other token sources. Refused with the reason rather than "unknown key": serving
    # without them would turn away every client they were meant to let in, or let in ones
    # they were meant to keep out.
    oidc: Any = None
    awsSecretsManager: Any = None
    upstreamTokenEndpoint: Any = None

    @field_validator("oidc", "awsSecretsManager", "upstreamTokenEndpoint")
    @classmethod
    def _not_implemented(cls, value: Any, info: Any) -> None:
        if value is not None:
            raise ValueError(_UNSUPPORTED_SOURCES[info.field_name])
        return None
