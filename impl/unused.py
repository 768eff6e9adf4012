"""Parts of our libraries that a serving process never uses, left out of its imports.

connexion and httpx import optional parts at start whether or not they are used, and each
falls back cleanly when such a part cannot be imported, as when its extra is not installed:

* ``connexion.apps.flask``, ``connexion.frameworks.flask``: connexion's Flask app and framework
  (flask and its imports, about 0.1 CPU s); ocireg runs connexion's ``AsyncApp``;
* ``httpx._main``: httpx's command line (click, rich, pygments, about 0.15 CPU s), imported
  through connexion (``starlette.testclient``) only to define ``httpx.main``.

One more is imported for a case our specs never have: ``requests`` (with urllib3 and
charset_normalizer, about 0.15 CPU s), which ``connexion.json_schema`` imports at the top and
uses only to fetch a ``$ref`` to an http(s) URL. It is deferred: a stand-in takes its place
and imports it, whole, the first time one of its attributes is read. (The standard library's
LazyLoader does not do for this: a later ``import requests`` reads ``__spec__``, which loads it.)

:func:`for_serving` is for ``ocireg serve`` alone, before the server's modules are imported:
tests and embedders importing ocireg get their libraries as usual.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

UNUSED_WHEN_SERVING = ("connexion.apps.flask", "connexion.frameworks.flask", "httpx._main")
DEFERRED_WHEN_SERVING = ("requests",)


def leave_out(modules: tuple[str, ...]) -> None:
    """Make importing each of ``modules`` raise ImportError in this process (and the workers
    forked from it), unless it is imported already."""
    for name in modules:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable"


class _StandIn(ModuleType):
    """In ``sys.modules`` for a module not imported yet. Reading any attribute it lacks
    imports the module (dropping the stand-in first) and answers from it, so a holder of the
    stand-in keeps working after the import."""

    def __getattr__(self, attribute: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attribute)


def defer(modules: tuple[str, ...]) -> None:
    """Put a stand-in for each of ``modules`` that is installed and not imported yet."""
    for name in modules:
        if name not in sys.modules and importlib.util.find_spec(name) is not None:
            sys.modules[name] = _StandIn(name)


def for_serving() -> None:
    leave_out(UNUSED_WHEN_SERVING)
    defer(DEFERRED_WHEN_SERVING)
