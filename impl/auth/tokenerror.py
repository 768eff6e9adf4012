"""The error a bearer token is refused with, and the check for what must not reach a header:
light enough for the guard to import at every start (:mod:`ocireg.auth.bearerconfig`'s
settings model is imported only when ``http.auth.bearer`` is configured)."""

from __future__ import annotations


class TokenError(Exception):
    """A token that grants nothing; ``str()`` is a short reason fit for the client."""


def is_control(char: str) -> bool:
    """An ASCII control character (C0 or DEL), which must not reach a header."""
    return ord(char) < 0x20 or ord(char) == 0x7F
