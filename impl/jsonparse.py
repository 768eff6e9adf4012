"""Parse JSON a client sent, strictly and with a bound on nesting.

Python's ``json`` recurses once per nesting level and raises ``RecursionError`` (not
``ValueError``) around a thousand levels deep, which callers that catch ``ValueError`` answer
as a 500. Every parse of client JSON (manifests, image configs, search requests, API-key
requests) goes through :func:`loads`, which raises :class:`JSONError` (a ``ValueError``) for
anything that is not acceptable JSON, so that each caller answers its own 400.

``strict=True`` is for documents that must be plain JSON (RFC 8259), as the image spec asks of
manifests, because clients parse them with strict parsers (Go's ``encoding/json`` and others)
and a manifest that some of them read differently, or not at all, must never be stored: no
byte-order mark, no ``NaN`` or ``Infinity``, no duplicate keys (which parser keeps which
value?), no unpaired UTF-16 surrogate escapes (no UTF-8 encodes them).
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn

MAX_DEPTH = 64  # an OCI manifest nests about five levels; a GraphQL request a few more


class JSONError(ValueError):
    """Not acceptable JSON; the message says why, for an error detail."""


def loads(
    data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH, strict: bool = False
) -> Any:
    """The document in ``data`` (UTF-8 when bytes); :class:`JSONError` when it is not JSON,
    or nests objects and arrays more than ``max_depth`` levels deep, or (``strict``) is not
    plain JSON."""
    try:
        text = data.decode() if isinstance(data, bytes | bytearray) else data
        if strict:
            document = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
            if _SURROGATE_ESCAPE.search(text):
                _check_surrogates(document)
        elif len(text) > LARGE:
            document = json.loads(text, object_pairs_hook=_in_steps)
        else:
            document = json.loads(text)
    except UnicodeDecodeError as exc:
        raise JSONError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise JSONError(f"nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise JSONError(str(exc)) from None
    if _opening_brackets(text) > max_depth and depth(document) > max_depth:
        raise JSONError(f"nested more than {max_depth} levels deep")
    return document


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# json's C parser holds the interpreter for a whole document: 80 ms for a 4 MiB manifest,
# during which the event loop serves nobody. Through a Python hook per object (as strict mode
# has anyway), other threads get the interpreter between objects, for about three times the
# work; only worth it for large documents.
LARGE = 256 * 1024


def _in_steps(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(pairs)


def _no_constant(name: str) -> NoReturn:
    raise JSONError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONError(f"duplicate key {key!r}")
            seen.add(key)
    return document


def _check_surrogates(document: Any) -> None:
    """A ``\\uD800``-style escape that pairs with no other names no character: json decodes
    it into a lone surrogate, which no UTF-8 can hold."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                raise JSONError("an unpaired UTF-16 surrogate escape") from None


def _opening_brackets(text: str) -> int:
    """An upper bound of the depth, cheap enough to skip the walk for most documents."""
    return text.count("[") + text.count("{")


def depth(document: Any) -> int:
    """How many levels of objects and arrays ``document`` nests (0 for a scalar); without
    recursion, so any depth the parser accepted can be measured."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level + 1)
        pending.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest
