"""Public keys read from configured PEM files, for the code that then accepts or refuses them.

cryptography 51 deprecated DSA: reading a DSA key (or a DSA certificate's key) warns. ocireg
refuses DSA keys itself, with an error naming the key's type and the file, so the library's
warning would only add noise to the log (and fail a run that treats warnings as errors, as the
test suite does) before that error; it is silenced here, around the read alone.

``warnings.catch_warnings`` swaps the process's filters, not a thread's (Python 3.11): two
reads at once in two threads may leave the "ignore" in place after both. The only effect is
that later DSA deprecation warnings stay silent, which is what these reads want anyway.
"""

from __future__ import annotations

import warnings

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.utils import CryptographyDeprecationWarning


def load_pem_public_key(data: bytes) -> PublicKeyTypes:
    """``serialization.load_pem_public_key``, without the deprecation warning for DSA keys."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return serialization.load_pem_public_key(data)


def certificate_public_key(certificate: x509.Certificate) -> PublicKeyTypes:
    """``certificate.public_key()``, without the deprecation warning for DSA keys."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return certificate.public_key()
