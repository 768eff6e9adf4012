"""The ``events`` section's settings: zot's keys, and ocireg's per sink (see the package's
docstring). Imported only when a configuration has the section (``Extension.settings`` names
the model), or when the extension runs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ocireg.defaults import empty_list
from ocireg.durations import Duration
from ocireg.extensions.declaration import ExtensionSettings
from ocireg.repopattern import RepositoryPattern

from .headers import header_problem

# zot's event names, before a configured ``typePrefix`` replaces the ``zotregistry`` part.
DEFAULT_TYPE_PREFIX = "zotregistry"
DEFAULT_SOURCE = "zotregistry.dev"
EVENT_KINDS = (
    "repository.created",
    "image.updated",
    "image.deleted",
    "image.lint_failed",
    "image.scanned",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # see ExtensionSettings


class Credentials(_Strict):
    username: str | None = Field(None, description="HTTP Basic user name (NATS: user).")
    password: str | None = Field(None, description="HTTP Basic password (NATS: password).")
    file: str | None = Field(None, description="NATS credentials file (.creds); NATS only.")
    token: str | None = Field(
        None, description="Bearer token (HTTP Authorization header; NATS: auth token)."
    )

    @model_validator(mode="after")
    def _pairs(self) -> Credentials:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class SinkTLS(_Strict):
    caCertFile: str | None = Field(None, description="CA bundle that signs the sink's certificate.")
    certFile: str | None = Field(None, description="Client certificate (PEM) sent to the sink.")
    keyFile: str | None = Field(None, description="Key of certFile (PEM).")

    @model_validator(mode="after")
    def _pair(self) -> SinkTLS:
        if (self.certFile is None) != (self.keyFile is None):
            raise ValueError("certFile and keyFile go together")
        return self


class Signature(_Strict):
    secret: str | None = Field(None, description="HMAC-SHA256 key, as text.")
    secretFile: str | None = Field(
        None, description="A file holding the key (trailing newline cut)."
    )
    header: str = Field(
        "X-Ocireg-Signature",
        description="Header carrying 'sha256=<hex>' of the HMAC over the request body.",
    )

    @model_validator(mode="after")
    def _one_key(self) -> Signature:
        if (self.secret is None) == (self.secretFile is None):
            raise ValueError("give exactly one of secret and secretFile")
        return self


class Sink(_Strict):
    type: Literal["http", "nats"] = Field(description="Where events go: an HTTP URL or NATS.")
    address: str = Field(description="http(s):// URL, or nats:// server URL.")
    channel: str | None = Field(None, description="NATS subject (required for nats).")
    timeout: Duration = Field(
        30.0, description="How long one delivery may take; 0 or absent: 30s, as zot."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers.")
    proxy: str | None = Field(None, description="HTTP proxy URL for this sink (http only).")
    credentials: Credentials | None = None
    tls: SinkTLS | None = None
    # beyond zot
    events: list[str] = Field(
        default_factory=empty_list,
        description="Event types this sink receives (full names, e.g. zotregistry.image.updated);"
        " empty: all.",
    )
    repositories: list[RepositoryPattern] = Field(
        default_factory=empty_list, description="Repository globs this sink receives; empty: all."
    )
    signature: Signature | None = Field(None, description="HMAC signature header (http only).")
    maxQueued: int = Field(
        10000,
        ge=1,
        description="Undelivered events kept for this sink; beyond it the oldest are dropped "
        "(counted and logged).",
    )

    @model_validator(mode="after")
    def _fits_type(self) -> Sink:
        if self.timeout <= 0:
            self.timeout = 30.0
        if self.type == "nats":
            if not self.channel:
                raise ValueError("a nats sink needs channel (the subject)")
            for key in ("proxy", "signature"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} applies to http sinks only")
            if self.headers:
                raise ValueError("headers apply to http sinks only")
        else:
            if not self.address.startswith(("http://", "https://")):
                raise ValueError("an http sink's address is an http:// or https:// URL")
            if self.channel is not None:
                raise ValueError("channel applies to nats sinks only")
            if self.credentials is not None and self.credentials.file is not None:
                raise ValueError("credentials.file applies to nats sinks only")
            self._sendable()
        return self

    def _sendable(self) -> None:
        """Refuse header fields an HTTP request cannot carry (see :mod:`.headers`)."""
        fields = [(f"headers.{name}", name, value) for name, value in self.headers.items()]
        if self.credentials is not None and self.credentials.token is not None:
            token = self.credentials.token
            fields.append(("credentials.token", "Authorization", f"Bearer {token}"))
        if self.signature is not None:
            fields.append(("signature.header", self.signature.header, "sha256="))
        for path, name, value in fields:
            problem = header_problem(name, value)
            if problem is not None:
                raise ValueError(f"{path}: {problem}")


class EventsSettings(ExtensionSettings):
    sinks: list[Sink] = Field(default_factory=empty_list, description="Where events are delivered.")
    source: str = Field(DEFAULT_SOURCE, description="The CloudEvents source attribute.")
    typePrefix: str = Field(
        DEFAULT_TYPE_PREFIX,
        description="Replaces 'zotregistry' in event types (com.example gives "
        "com.example.image.updated).",
    )

    def type_names(self) -> list[str]:
        return [f"{self.typePrefix}.{kind}" for kind in EVENT_KINDS]

    @model_validator(mode="after")
    def _known_types(self) -> EventsSettings:
        # both go into every HTTP delivery's ce-source and ce-type headers
        for key, value in (("source", self.source), ("typePrefix", self.typePrefix)):
            if header_problem("ce-" + key, value) is not None:
                raise ValueError(f"{key}: holds a CR, LF or NUL, which an HTTP header cannot")
        known = self.type_names()
        for position, sink in enumerate(self.sinks):
            unknown = [name for name in sink.events if name not in known]
            if unknown:
                raise ValueError(
                    f"sinks.{position}.events: unknown event type(s) {unknown} "
                    f"(known: {', '.join(known)})"
                )
        return self
