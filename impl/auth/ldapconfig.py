"""``http.auth.ldap``: its settings, apart from :mod:`ocireg.auth.ldap` so that reading a
configuration does not import ldap3 (``ocireg.auth.settings`` is loaded at every start)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# RFC 4512 attribute descriptions: a name (letters, digits, hyphens) or a numeric OID. Anything
# else in userAttribute would be pasted into the filter unescaped.
_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*")


class LdapConfig(BaseModel):
    """``http.auth.ldap`` with zot's keys."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=1, description="Host name or IP of the LDAP server.")
    port: int = Field(389, ge=1, le=65535)
    insecure: bool = Field(False, description="Allow plain LDAP without TLS.")
    startTLS: bool = Field(False, description="Upgrade a plain connection with StartTLS.")
    skipVerify: bool = Field(False, description="Do not verify the server's certificate.")
    subtreeSearch: bool = Field(False, description="Search the whole subtree, not one level.")
    baseDN: str = Field(min_length=1, description="Where users are searched.")
    userAttribute: str = Field(description="Attribute holding the user name, e.g. uid.")
    userFilter: str | None = Field(None, description="Extra filter ANDed to the user lookup.")
    userGroupAttribute: str | None = Field(None, description="User attribute naming groups.")
    caCert: str | None = Field(None, description="PEM file of CAs to trust instead of system's.")
    credentialsFile: str | None = Field(None, description='JSON {"bindDN", "bindPassword"}.')
    bindDN: str | None = Field(None, description="Service account (prefer credentialsFile).")
    bindPassword: str | None = Field(None, description="Service password (prefer the file).")

    @field_validator("userAttribute", "userGroupAttribute")
    @classmethod
    def _attribute_name(cls, value: str | None) -> str | None:
        if value is not None and not _ATTRIBUTE.fullmatch(value):
            raise ValueError(f"{value!r} is not an LDAP attribute name")
        return value

    @field_validator("userFilter")
    @classmethod
    def _filter(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        # A bare "objectClass=person" would be pasted in as garbage: it must be a whole filter.
        if not (value.startswith("(") and value.endswith(")")):
            raise ValueError(f"userFilter {value!r} must be a filter in parentheses")
        return value

    @model_validator(mode="after")
    def _service_account(self) -> LdapConfig:
        if not self.credentialsFile and not self.bindDN:
            raise ValueError("credentialsFile or bindDN is required for the service account")
        # ldap3 is imported here, not at the top: LDAP is configured, and only then is its
        # import (0.1-0.2 s) worth paying at start-up.
        from ldap3.core.exceptions import LDAPException
        from ldap3.operation.search import parse_filter

        probe = f"({self.userAttribute}=probe)"  # the lookup filter, as ldap.user_filter makes it
        if self.userFilter:
            probe = f"(&{probe}{self.userFilter})"
        try:
            parse_filter(probe, None, False, False, None, False)
        except LDAPException as err:
            raise ValueError(
                f"userFilter {self.userFilter!r} is not a valid filter: {err}"
            ) from err
        return self
