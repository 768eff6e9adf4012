"""Default factories for settings models.

pydantic reads the signature of every field's ``default_factory`` when it builds a model (does
it take the validated data?). ``list``'s is a builtin's text signature, parsed each time: 0.5 ms
a field, about 0.01 CPU s of every start over the configuration's models. A function's
signature is read in microseconds.
"""

from __future__ import annotations

from typing import Any


def empty_list() -> list[Any]:
    """A new empty list (``default_factory=list``, read faster)."""
    return []
