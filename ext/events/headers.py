"""Which HTTP header fields a webhook delivery may send: a name that is an HTTP token, a value
without CR, LF or NUL. A CR or LF in a value would end the field early and let a configured
header or an event attribute write fields (or a body) of its own; httpx, which deliveries used
before the lean client, refused them too. Checked at configuration (``ocireg verify`` and
start-up name the key) and again when a request is written."""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110's tchar
_FORBIDDEN = re.compile(r"[\r\n\0]")


def header_problem(name: str, value: str) -> str | None:
    """Why ``name: value`` cannot be sent (None: it can)."""
    if not _TOKEN.fullmatch(name):
        return f"the header name {name!r} is not an HTTP token"
    if _FORBIDDEN.search(value):
        return f"the value of header {name!r} holds a CR, LF or NUL"
    return None


def check_headers(headers: Mapping[str, str]) -> None:
    """Raise ValueError naming the first header field that cannot be sent."""
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            raise ValueError(problem)
