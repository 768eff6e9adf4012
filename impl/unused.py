"""Parts of our libraries that a serving process never uses, left out of its imports.

connexion and httpx import optional parts at start whether or not they are used, and each
falls back cleanly when such a part cannot be imported, as when its extra is not installed:

* ``connexion.apps.flask``, ``connexion.frameworks.flask``: connexion's Flask app and framework
  (flask and its imports, about 0.1 CPU s); ocireg runs connexion's ``AsyncApp``;
* ``httpx._main``: httpx's command line (click, rich, pygments, about 0.15 CPU s), imported
  through connexion (``starlette.testclient``) only to define ``httpx.main``;
* ``watchfiles``: uvicorn's file watcher for ``--reload`` (about 0.005 CPU s), which uvicorn
  replaces with its own polling one when it is missing; ocireg never reloads.

Others are imported for cases a server never meets; each is deferred, not left out, so that
it is there, whole, the first time it is used:

* ``requests`` (with urllib3 and charset_normalizer, about 0.15 CPU s), which
  ``connexion.json_schema`` imports at the top and uses only to fetch a ``$ref`` to an
  http(s) URL; ``jinja2`` (about 0.04 CPU s), which ``connexion.spec`` uses only to render a
  spec given as a file with arguments (ours is given as a dict); ``httpx`` (about 0.04 CPU s),
  which ``connexion.security`` uses only to fetch OAuth2 token information; ``urllib.request``
  (about 0.02 CPU s), which ``connexion.json_schema`` uses only to resolve a ``file:`` URL
  (our specs are dicts, resolved in memory). A stand-in takes the module's place and imports
  it the first time one of its attributes is read. (The standard library's LazyLoader does
  not do for this: a later ``import requests`` reads ``__spec__``, which loads it.)
* ``starlette.testclient`` and ``starlette.templating`` (which imports jinja2 whole):
  connexion imports their ``TestClient`` and ``Jinja2Templates`` classes at the top, for
  ``App.test_client()`` and the Swagger UI (off in ocireg; connexion builds its templates
  all the same). A class of the same name stands in for each, which imports the module and
  builds the real object when it is called (a test client) or first used (the templates).
* ``werkzeug``'s package module: connexion reads ``werkzeug.Request`` (as an annotation of its
  Flask path) and ``werkzeug.local``; importing the package would also import its development
  server and test client (about 0.05 CPU s). The package is created without running its
  ``__init__``: each of the names it exports is imported from its own module when first read,
  and any other name runs the ``__init__`` then. ``werkzeug.Request`` itself is a class of
  the same name that imports werkzeug's request and response classes (about 0.04 CPU s) and
  builds a real request when called: connexion only names it. ``werkzeug.wsgi`` (with
  werkzeug's HTTP parsing and data structures, about 0.02 CPU s) stands in likewise for
  ``werkzeug.local``, connexion's context, which imports its ``ClosingIterator`` for a WSGI
  middleware that ocireg never builds.
* ``uvicorn``'s package module likewise: its ``__init__`` imports ``uvicorn.main``, the
  command line, with click (about 0.015 CPU s); ocireg runs uvicorn's ``Config`` and
  ``Server`` itself.

:func:`for_serving` is for ``ocireg serve`` alone, before the server's modules are imported:
tests and embedders importing ocireg get their libraries as usual.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

UNUSED_WHEN_SERVING = (
    "connexion.apps.flask",
    "connexion.frameworks.flask",
    "httpx._main",
    "watchfiles",
)
DEFERRED_WHEN_SERVING = ("requests", "jinja2", "httpx", "urllib.request")
# module: {class: whether an object of it is built only on its first use}
CLASSES_ON_USE = {
    "starlette.testclient": {"TestClient": False},
    "starlette.templating": {"Jinja2Templates": True},
    "werkzeug.wsgi": {"ClosingIterator": False},
}
# The names each package's __init__.py exports, each with the module that defines it.
PACKAGE_EXPORTS = {
    "werkzeug": {
        "run_simple": "werkzeug.serving",
        "Client": "werkzeug.test",
        "Response": "werkzeug.wrappers",
    },
    "uvicorn": {
        "__version__": "uvicorn._version",
        "Config": "uvicorn.config",
        "Server": "uvicorn.server",
        "main": "uvicorn.main",
        "run": "uvicorn.main",
    },
}


def leave_out(modules: tuple[str, ...]) -> None:
    """Make importing each of ``modules`` raise ImportError in this process (and the workers
    forked from it), unless it is imported already."""
    for name in modules:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable"


def _real(name: str, stand_in: ModuleType) -> ModuleType:
    """The module ``name`` itself, imported now if ``stand_in`` still holds its place."""
    if sys.modules.get(name) is stand_in:
        del sys.modules[name]
    return importlib.import_module(name)


class _StandIn(ModuleType):
    """In ``sys.modules`` for a module not imported yet. Reading any attribute it lacks
    imports the module (dropping the stand-in first) and answers from it, so a holder of the
    stand-in keeps working after the import."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute == "__path__" and not self.__dict__.get("_ocireg_package"):
            # What `from module import name` asks first: a plain module has none.
            raise AttributeError(attribute)
        return getattr(_real(self.__name__, self), attribute)


def _stand_in(name: str) -> _StandIn | None:
    """A stand-in for ``name`` if it is installed and not imported yet."""
    if name in sys.modules:
        return None
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    stand_in = _StandIn(name)
    stand_in.__dict__["_ocireg_package"] = spec.submodule_search_locations is not None
    # importlib.util.find_spec (whether an extension's requirements are installed) answers
    # from a module's __spec__ without importing it
    stand_in.__spec__ = spec
    return stand_in


def defer(modules: tuple[str, ...]) -> None:
    """Put a stand-in for each of ``modules`` that is installed and not imported yet."""
    for name in modules:
        stand_in = _stand_in(name)
        if stand_in is not None:
            sys.modules[name] = stand_in
            parent, _, child = name.rpartition(".")
            if parent:  # `import urllib.request` then reads `urllib.request`
                setattr(sys.modules[parent], child, stand_in)


class _Later:
    """An object built on its first use: reading any attribute builds it and answers from it."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self.__dict__["_ocireg_build"] = build

    def __getattr__(self, attribute: str) -> Any:
        if "_ocireg_object" not in self.__dict__:
            self.__dict__["_ocireg_object"] = self.__dict__["_ocireg_build"]()
        return getattr(self.__dict__["_ocireg_object"], attribute)


def _class_on_use(stand_in: ModuleType, name: str, later: bool) -> type:
    """A class named ``name`` whose call imports the module ``stand_in`` stands for and
    calls that module's ``name`` instead, then (``later``) or on the object's first use."""

    def build(_cls: type, *args: Any, **kwargs: Any) -> Any:
        def real() -> Any:
            return getattr(_real(stand_in.__name__, stand_in), name)(*args, **kwargs)

        return _Later(real) if later else real()

    return type(name, (), {"__new__": build, "__module__": stand_in.__name__})


def classes_on_use(modules: dict[str, dict[str, bool]]) -> None:
    """Put a stand-in for each module that is installed and not imported yet, with the
    given class names already defined (``from module import Class`` does not import it)."""
    for module, names in modules.items():
        stand_in = _stand_in(module)
        if stand_in is None:
            continue
        for name, later in names.items():
            setattr(stand_in, name, _class_on_use(stand_in, name, later))
        sys.modules[module] = stand_in


class _Package(ModuleType):
    """A package whose ``__init__`` has not run: a name it exports is imported from the
    module that defines it when first read, a submodule is imported, and any other name runs
    the ``__init__`` first."""

    def __getattr__(self, attribute: str) -> Any:
        exports: dict[str, str] = self.__dict__["_ocireg_exports"]
        submodule = f"{self.__name__}.{attribute}"
        if attribute in exports:
            value = getattr(importlib.import_module(exports[attribute]), attribute)
        elif not attribute.startswith("__") and importlib.util.find_spec(submodule) is not None:
            value = importlib.import_module(submodule)  # `from .. import exceptions`
        elif not self.__dict__.get("_ocireg_initialised"):
            self.__dict__["_ocireg_initialised"] = True
            self.__spec__.loader.exec_module(self)  # type: ignore[union-attr]
            value = getattr(self, attribute)
        else:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attribute!r}")
        setattr(self, attribute, value)
        return value


def packages_on_use(packages: dict[str, dict[str, str]]) -> None:
    """Put each package that is installed and not imported yet in ``sys.modules`` without
    running its ``__init__`` (its submodules import as usual)."""
    for name, exports in packages.items():
        spec = importlib.util.find_spec(name) if name not in sys.modules else None
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            continue
        package = importlib.util.module_from_spec(spec)
        package.__class__ = _Package
        package.__dict__["_ocireg_exports"] = exports
        sys.modules[name] = package


# package: {class it exports: the module that defines it}, each a class of the same name whose
# call imports that module and builds the real object
PACKAGE_CLASSES_ON_USE = {"werkzeug": {"Request": "werkzeug.wrappers"}}


def _class_from(module: str, name: str) -> type:
    """A class named ``name`` whose call imports ``module`` and calls its ``name`` instead."""

    def build(_cls: type, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    return type(name, (), {"__new__": build, "__module__": module})


def package_classes_on_use(packages: dict[str, dict[str, str]]) -> None:
    """Give each package whose ``__init__`` has not run (:func:`packages_on_use`) the named
    classes as classes on use."""
    for package, classes in packages.items():
        if isinstance(sys.modules.get(package), _Package):
            for name, module in classes.items():
                setattr(sys.modules[package], name, _class_from(module, name))


def for_serving() -> None:
    leave_out(UNUSED_WHEN_SERVING)
    defer(DEFERRED_WHEN_SERVING)
    packages_on_use(PACKAGE_EXPORTS)  # first: a stand-in for werkzeug.wsgi finds werkzeug
    package_classes_on_use(PACKAGE_CLASSES_ON_USE)
    classes_on_use(CLASSES_ON_USE)
