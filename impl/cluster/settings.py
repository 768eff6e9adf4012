"""The ``cluster`` section, zot's keys: ``members`` (``host:port`` each, the same list in the
same order on every member), ``hashKey`` (exactly 16 characters: SipHash's key) and ``tls``
(how members reach each other when they serve HTTPS)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ClusterTLS(BaseModel):
    """``cacert`` verifies the members' certificates (else the system's CAs do). zot's
    ``cert`` and ``key`` (a client certificate a member shows another) are refused: an ocireg
    member authenticates callers, not members. With ``http.tls.cacert`` a member's certificate
    would name the user of every request it proxies; without it none is asked for."""

    model_config = ConfigDict(extra="forbid")
    cert: str | None = None
    key: str | None = None
    cacert: str | None = None

    @model_validator(mode="after")
    def _no_member_certificate(self) -> ClusterTLS:
        if self.cert is not None or self.key is not None:
            raise ValueError(
                "cert, key: members do not show client certificates to each other: the owner "
                "authenticates the caller from the headers passed on, and a member's "
                "certificate would stand for every caller it proxies"
            )
        return self


def split_member(member: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) into its host and port, or ValueError."""
    host, sep, port = member.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{member!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: list[str] = Field(min_length=1)
    hashKey: str
    tls: ClusterTLS | None = None

    @field_validator("members")
    @classmethod
    def _members_are_sockets(cls, members: list[str]) -> list[str]:
        for member in members:
            split_member(member)
        if len(set(members)) != len(members):
            raise ValueError("a member is listed twice")
        return members

    @field_validator("hashKey")
    @classmethod
    def _sixteen_bytes(cls, key: str) -> str:
        # zot panics on any other length (SipHash's key is 16 bytes); refused here instead
        if len(key.encode()) != 16:
            raise ValueError("hashKey must be exactly 16 bytes (SipHash's key)")
        return key
