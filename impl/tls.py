"""The HTTP protocol ocireg serves TLS with: uvicorn's httptools protocol, plus the ASGI TLS
extension (``scope["extensions"]["tls"]``) in every request's scope, which uvicorn does not
provide. Authentication reads the verified client certificate from it (mTLS).

The certificate is read once per connection, after the handshake verified it against
``http.tls.cacert``; every request on the connection shares it.
"""

from __future__ import annotations

import asyncio
import ssl

from ocireg.connections import GuardedHttpToolsProtocol

# The extension gives the version as its number on the wire.
_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class ClientCertHttpToolsProtocol(GuardedHttpToolsProtocol):
    """The guarded protocol (``connections.py``) plus the TLS extension; given to uvicorn
    through :func:`ocireg.connections.protocol_factory`, which pickles it by reference into
    the worker processes."""

    _tls: dict[object, object] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        self._tls = tls_extension(ssl_object) if ssl_object is not None else None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            # A copy per request: what one request's app does to its scope stays its own.
            self.scope["extensions"] = {"tls": dict(self._tls)}


def tls_extension(ssl_object: ssl.SSLObject) -> dict[object, object]:
    """The ASGI TLS extension's fields for one connection."""
    der = ssl_object.getpeercert(binary_form=True)
    # Only a certificate the handshake verified counts. A server that does not verify
    # (CERT_NONE) asks for none, so this is a guard against a changed context, not a path.
    if ssl_object.context.verify_mode == ssl.CERT_NONE:
        der = None
    return {
        "server_cert": None,  # the server's own certificate: nothing here needs it
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": _subject(der) if der else None,
        "client_cert_error": None,  # a certificate that fails verification fails the handshake
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,  # Python's ssl names the suite but does not give its number
    }


def _subject(der: bytes) -> str:
    from cryptography import x509  # only TLS with client certificates needs it

    return x509.load_der_x509_certificate(der).subject.rfc4514_string()
