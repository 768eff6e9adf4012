"""The ``sync`` section's settings, in zot's keys, and the check of them against the rest of
the configuration. Imported only when a configuration has the section (``Extension.settings``
names the model), or when the extension runs."""

from __future__ import annotations

import re
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ocireg.configcheck import normalise_keys
from ocireg.defaults import empty_list
from ocireg.durations import Duration
from ocireg.extensions.declaration import ExtensionSettings
from ocireg.repopattern import check as check_pattern

from .staging import check_usable

# zot keys that ocireg accepts but does not act on yet: each is warned about, by key path.
NOT_BUILT = {
    "disableHTTP2": "the upstream client speaks HTTP/1.1 only",
    "maxIdleConnsPerHost": "the client's connection pool keeps its defaults",
    "credentialHelper": (
        "cloud credential helpers (ecr, gcp, oauth2) need the cloud's own service, which "
        "ocireg does not call; only credentialsFile supplies credentials"
    ),
}
DEFAULT_SYNC_TIMEOUT = 3 * 3600.0  # zot's (constants.go)
DEFAULT_REQ_CONCURRENT = 3  # zot's when unset: regclient's


class TagRules(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # see ExtensionSettings

    regex: str | None = Field(None, description="Only tags this regular expression matches.")
    excludeRegex: str | None = Field(None, description="No tag this regular expression matches.")
    semver: bool = Field(False, description="Only tags that are semantic versions.")

    @field_validator("regex", "excludeRegex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"not a regular expression: {error}") from None
        return value


class ContentRule(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # see ExtensionSettings

    prefix: str = Field(description="Upstream repositories, a doublestar glob (/repo/**).")
    tags: TagRules | None = None
    destination: str | None = Field(None, description="Where matching repositories go here.")
    stripPrefix: bool = Field(False, description="Drop the prefix's literal part under it.")

    @field_validator("prefix")
    @classmethod
    def _glob(cls, value: str) -> str:
        check_pattern(value.strip("/") or "**")
        return value


class UpstreamRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # see ExtensionSettings

    urls: list[str] = Field(min_length=1, description="Mirrors of one upstream, tried in order.")
    content: list[ContentRule] = Field(default_factory=empty_list)
    pollInterval: Duration | None = Field(None, gt=0, description="Periodic sync every ...")
    onDemand: bool = Field(False, description="Fetch what a pull misses locally.")
    manifestCheckInterval: Duration = Field(
        60.0, ge=0, description="A tag pulled on demand is checked upstream at most this often."
    )
    tlsVerify: bool = True
    certDir: str | None = Field(None, description="ca.crt, client.cert and client.key.")
    maxRetries: int = Field(0, ge=0)
    retryDelay: Duration = Field(1.0, ge=0)
    maxRetryDelay: Duration | None = Field(None, ge=0, description="Cap of the back-off.")
    onlySigned: bool = Field(
        False, description="Sync only images with a signature upstream that trust verifies."
    )
    syncLegacyCosignTags: bool = True
    preserveDigest: bool = False
    syncTimeout: Duration = Field(
        DEFAULT_SYNC_TIMEOUT,
        gt=0,
        description="Most time one upstream request may take, its whole body read included.",
    )
    reqConcurrent: int = Field(
        DEFAULT_REQ_CONCURRENT, gt=0, description="Most requests in flight to each upstream host."
    )
    reqPerSec: float | None = Field(
        None, gt=0, description="Most requests started per second to each upstream host."
    )
    disableHTTP2: bool | None = None
    maxIdleConnsPerHost: int | None = None
    credentialHelper: str | None = None

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not re.fullmatch(r"https?://[^/\s]+/?", url):
                raise ValueError(f"{url!r} is not an http(s)://host[:port] URL")
        return [url.rstrip("/") for url in urls]

    @model_validator(mode="after")
    def _something_to_do(self) -> UpstreamRegistry:
        if not self.onDemand and not (self.content and self.pollInterval):
            raise ValueError(
                "does nothing: set onDemand: true, or content and pollInterval for periodic sync"
            )
        return self


class SyncSettings(ExtensionSettings):
    registries: list[UpstreamRegistry] = Field(default_factory=empty_list)
    credentialsFile: str | None = Field(
        None, description="JSON: host[:port] -> {username, password}; re-read when it changes."
    )
    downloadDir: str | None = Field(
        None, description="A local directory where blobs are downloaded before they are stored."
    )

    @field_validator("downloadDir")
    @classmethod
    def _usable(cls, value: str | None) -> str | None:
        return None if value is None else check_usable(value)

    def notices(self) -> list[str]:
        """``key.path: why`` for every key given that ocireg accepts and ignores."""
        found = []
        for number, upstream in enumerate(self.registries):
            for key, why in NOT_BUILT.items():
                if getattr(upstream, key) is not None:
                    found.append(f"registries.{number}.{key}: not supported yet, ignored: {why}")
        return found


def check(config: Any, settings: SyncSettings) -> list[str]:
    """Refuse ``onlySigned`` without a trust extension that could trust a signature: every
    image would be refused, silently."""
    signed = [n for n, upstream in enumerate(settings.registries) if upstream.onlySigned]
    if not signed:
        return []
    why = _trust_unable(config.extensions or {})
    return [f"registries.{n}.onlySigned: needs {why}" for n in signed] if why else []


def _trust_unable(sections: dict[str, Any]) -> str | None:
    """Why the configured trust extension cannot trust a signature; None when it can (or
    when its section is wrong, which trust's own check reports)."""
    from ocireg.ext.trust import TrustSettings  # light: the declaration and settings only

    given = {str(key).lower(): value for key, value in sections.items()}
    if "trust" not in given:
        return "the trust extension (extensions.trust), which verifies the signatures"
    try:  # `trust:` with nothing under it is present, hence enabled
        trust = TrustSettings.model_validate(normalise_keys(given["trust"] or {}, TrustSettings))
    except ValidationError:
        return None
    if not trust.enable:
        return "the trust extension enabled (extensions.trust.enable)"
    if not (trust.cosign or trust.notation):
        return "extensions.trust.cosign or extensions.trust.notation on: no signature is verified"
    return None
