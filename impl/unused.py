"""Parts of our libraries that a serving process never uses, left out of its imports.

connexion and httpx import optional parts at start whether or not they are used, and each
falls back cleanly when such a part cannot be imported, as when its extra is not installed:

* ``connexion.apps.flask``, ``connexion.frameworks.flask``: connexion's Flask app and framework
  (flask and its imports, about 0.1 CPU s); ocireg runs connexion's ``AsyncApp``;
* ``httpx._main``: httpx's command line (click, rich, pygments, about 0.15 CPU s), imported
  through connexion (``starlette.testclient``) only to define ``httpx.main``.

:func:`leave_out` is for ``ocireg serve`` alone, before the server's modules are imported:
tests and embedders importing ocireg get their libraries whole.
"""

from __future__ import annotations

import sys

UNUSED_WHEN_SERVING = ("connexion.apps.flask", "connexion.frameworks.flask", "httpx._main")


def leave_out(modules: tuple[str, ...] = UNUSED_WHEN_SERVING) -> None:
    """Make importing each of ``modules`` raise ImportError in this process (and the workers
    forked from it), unless it is imported already."""
    for name in modules:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable"
