"""``trust``: notation and cosign signatures verified against uploaded keys and certificates.

zot's keys (``enable``, ``cosign``, ``notation``) and one of ocireg's: ``requireSignature``,
the repositories whose images are served only with a trusted signature.
"""

from __future__ import annotations

from pydantic import Field

from ocireg.defaults import empty_list
from ocireg.extensions.declaration import Extension, ExtensionSettings
from ocireg.repopattern import RepositoryPattern


class TrustSettings(ExtensionSettings):
    cosign: bool = Field(
        False,
        description="Verify cosign signatures with the public keys uploaded to "
        "/v2/_zot/ext/cosign (as zot, off unless set).",
    )
    notation: bool = Field(
        False,
        description="Verify notation signatures with the certificates uploaded to "
        "/v2/_zot/ext/notation (as zot, off unless set).",
    )
    requireSignature: list[RepositoryPattern] = Field(
        default_factory=empty_list,
        description="Repository globs whose images are pulled only when a signature of "
        "theirs is trusted (403 DENIED otherwise). Not in zot.",
    )


EXTENSION = Extension(
    name="trust",
    description="Signature verification (notation, cosign) against uploaded keys and "
    "certificates, shown in search, and an optional pull gate.",
    setup="ocireg.ext.trust.handlers:setup",
    settings=TrustSettings,
    namespace="_zot",
    specs=("ext/ext-zot-trust.yaml",),
    definition="ext/ext-zot-trust.md",
    extra="trust",
    requires=("cryptography", "cbor2", "asn1crypto"),
)
