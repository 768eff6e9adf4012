"""Who a verified TLS client certificate names, as zot's ``http.auth.mtls`` options say.

The certificate was verified against ``http.tls.cacert`` during the TLS handshake (see
:mod:`ocireg.tls`); here only its identity is read: the first attribute of
``identityAttributes`` that yields a non-empty value wins, in the order configured.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from cryptography import x509
from cryptography.x509.oid import NameOID

from ocireg.auth.settings import MTLSConfig

_DEFAULT = MTLSConfig()


def identity_from_certificate(certificate: bytes | str, mtls: MTLSConfig | None) -> str | None:
    """The user a client certificate (DER or PEM) names, or None when none of the configured
    attributes yields one. Without ``mtls`` the CommonName, as zot does by default."""
    cert = _load(certificate)
    config = mtls or _DEFAULT
    for attribute in config.identityAttributes:
        identity = _READERS[attribute](cert, config)
        if identity:
            return identity
    return None


def _load(certificate: bytes | str) -> x509.Certificate:
    if isinstance(certificate, str):
        certificate = certificate.encode("ascii")
    if certificate.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(certificate)
    return x509.load_der_x509_certificate(certificate)


def _common_name(cert: x509.Certificate, _config: MTLSConfig) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _subject(cert: x509.Certificate, _config: MTLSConfig) -> str | None:
    # RFC 4514, most specific first ("CN=alice,O=Example"): what Go's pkix.Name.String()
    # gives zot, so an accessControl written for zot names the same users.
    return cert.subject.rfc4514_string()


def _email(cert: x509.Certificate, config: MTLSConfig) -> str | None:
    return _nth(_sans(cert, x509.RFC822Name), config.emailSanIndex)


def _dns_name(cert: x509.Certificate, config: MTLSConfig) -> str | None:
    return _nth(_sans(cert, x509.DNSName), config.dnsSanIndex)


def _uri(cert: x509.Certificate, config: MTLSConfig) -> str | None:
    uri = _nth(_sans(cert, x509.UniformResourceIdentifier), config.uriSanIndex)
    if uri is None or config.uriSanPattern is None:
        return uri
    # zot takes the first capture group of the first match anywhere in the URI (Go's
    # FindStringSubmatch); a URI the pattern does not match names nobody.
    match = re.search(config.uriSanPattern, uri)
    return match.group(1) if match else None


_TextName = x509.RFC822Name | x509.DNSName | x509.UniformResourceIdentifier


def _sans(cert: x509.Certificate, kind: type[_TextName]) -> list[str]:
    """The certificate's subject alternative names of one kind, in the certificate's order
    (which the ``*SanIndex`` options count in)."""
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [name.value for name in extension.value if isinstance(name, kind)]


def _nth(values: list[str], index: int | None) -> str | None:
    position = index or 0
    return values[position] if position < len(values) else None


_READERS: dict[str, Callable[[x509.Certificate, MTLSConfig], str | None]] = {
    "CommonName": _common_name,
    "Subject": _subject,
    "Email": _email,
    "URI": _uri,
    "DNSName": _dns_name,
}
