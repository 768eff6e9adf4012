"""Parse JSON a client sent, strictly and with a bound on nesting.

Python's ``json`` recurses once per nesting level and raises ``RecursionError`` (not
``ValueError``) around a thousand levels deep, which callers that catch ``ValueError`` answer
as a 500. Every parse of client JSON (manifests, image configs, search requests, API-key
requests) goes through :func:`loads`, which raises :class:`JSONError` (a ``ValueError``) for
anything that is not acceptable JSON, so that each caller answers its own 400.

Stricter rules for manifests (byte-order marks, ``Infinity``, duplicate keys) belong here too,
as options of :func:`loads`.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # an OCI manifest nests about five levels; a GraphQL request a few more


class JSONError(ValueError):
    """Not acceptable JSON; the message says why, for an error detail."""


def loads(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The document in ``data`` (UTF-8 when bytes); :class:`JSONError` when it is not JSON,
    or nests objects and arrays more than ``max_depth`` levels deep."""
    try:
        text = data.decode() if isinstance(data, bytes | bytearray) else data
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
