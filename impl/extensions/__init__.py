"""The extension protocol: how ocireg's own extensions and anyone else's plug in.

An extension is an :class:`Extension` declaration (its name, configuration model, URL namespace,
OpenAPI fragments, definition document, the extra it needs, and a setup function). Built-in ones
live in ``ocireg.ext``; others are found through the ``ocireg.extensions`` entry point group.
See docs/extension-authors.md.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from ocireg.extensions.declaration import Extension, ExtensionSettings

if TYPE_CHECKING:
    from ocireg.extensions.runtime import SetupContext
    from ocireg.registry.routes import Registries
    from ocireg.registry.store import Registry
    from ocireg.state import AppState

__all__ = [
    "Extension",
    "ExtensionSettings",
    "SetupContext",
    "app_state",
    "registries",
    "registry",
    "state",
]


def __getattr__(name: str) -> Any:
    """``SetupContext`` on first use: importing a declaration (as a process that only reads an
    extension's settings does) then costs no server stack (runtime imports the whole config)."""
    if name == "SetupContext":
        from ocireg.extensions.runtime import SetupContext

        return SetupContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _scope() -> MutableMapping[str, Any]:
    from ocireg.operations import current_request  # late: configurations need no server stack

    return current_request().scope


def state(name: str) -> Any:
    """What extension ``name``'s setup returned, from inside one of its request handlers."""
    from ocireg.state import state_of

    return state_of(_scope()).extensions[name].state


def app_state() -> AppState:
    """Everything the running app shares (config, registry, scheduler, meta DB)."""
    from ocireg.state import state_of

    return state_of(_scope())


def registry(repo: str) -> Registry:
    """The registry holding repository ``repo`` (its blobs, manifests, tags), from inside a
    request handler; with ``storage.subPaths`` each storage root has its own."""
    from ocireg.state import state_of

    return state_of(_scope()).registries.of(repo)


def registries() -> Registries:
    """Every storage root: ``repositories()`` lists all repositories, ``of(repo)`` picks one."""
    from ocireg.state import state_of

    return state_of(_scope()).registries
