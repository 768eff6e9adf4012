"""Which extensions exist, which the configuration enables, and whether they can run here.

Extensions come from three places: the built-in ones listed in :data:`BUILTIN`, any installed
distribution that declares an ``ocireg.extensions`` entry point naming an :class:`Extension`, and
``module:attribute`` names in the ``OCIREG_EXTENSIONS`` environment variable (comma-separated),
for an extension under development that is not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import ValidationError

from ocireg.configcheck import ConfigError, normalise_keys, validation_problems
from ocireg.entrypoints import entry_points
from ocireg.extensions.declaration import Extension, ExtensionSettings

ENTRY_POINT_GROUP = "ocireg.extensions"
ENV_VARIABLE = "OCIREG_EXTENSIONS"

BUILTIN = (
    "ocireg.ext.specs:EXTENSION",
    "ocireg.ext.mgmt:EXTENSION",
    "ocireg.ext.lint:EXTENSION",
    "ocireg.ext.metrics:EXTENSION",
    "ocireg.ext.scrub:EXTENSION",
    "ocireg.ext.search:EXTENSION",
    "ocireg.ext.userprefs:EXTENSION",
    "ocireg.ext.events:EXTENSION",
    "ocireg.ext.ui:EXTENSION",
    "ocireg.ext.trust:EXTENSION",
    "ocireg.ext.sync:EXTENSION",
    "ocireg.ext.sbom:EXTENSION",
    "ocireg.ext.clientreport:EXTENSION",
)

# zot's extensions that ocireg will implement but does not yet: a zot configuration naming them
# still loads, and start-up says that they are ignored.
PLANNED = frozenset({"apikey"})


@dataclass(frozen=True)
class Enabled:
    """An extension the configuration turns on, with its validated settings."""

    extension: Extension
    settings: ExtensionSettings

    @property
    def name(self) -> str:
        return self.extension.name


def _import(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _from_environment() -> list[Any]:
    found = []
    for target in filter(None, (t.strip() for t in os.environ.get(ENV_VARIABLE, "").split(","))):
        try:
            found.append(_import(target))
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"{ENV_VARIABLE}: cannot load {target}: {exc}") from None
    return found


@cache
def _available() -> tuple[Extension, ...]:
    found = [_import(target) for target in BUILTIN]
    found += [point.load() for point in entry_points(group=ENTRY_POINT_GROUP)]
    found += _from_environment()
    return tuple(found)


def available(extra: Iterable[Extension] = ()) -> dict[str, Extension]:
    """Every known extension by name; ``extra`` adds ones given in code (tests, embedders)."""
    known: dict[str, Extension] = {}
    for extension in (*_available(), *extra):
        if not isinstance(extension, Extension):
            raise TypeError(f"{extension!r} is not an ocireg Extension")
        other = known.get(extension.name)
        if other is not None and other != extension:
            raise ValueError(f"two extensions are named {extension.name!r}")
        known[extension.name] = extension
    return known


def missing_modules(extension: Extension) -> list[str]:
    return [module for module in extension.requires if importlib.util.find_spec(module) is None]


def installed(known: dict[str, Extension]) -> list[str]:
    """The extensions that could be enabled here: their dependencies are importable."""
    return [name for name, extension in known.items() if not missing_modules(extension)]


def _settings(
    source: str, key: str, extension: Extension, value: Any, problems: list[str]
) -> ExtensionSettings | None:
    if value is None:
        value = {}  # `lint:` with nothing under it is present, hence enabled
    if not isinstance(value, dict):
        problems.append(f"{source}: extensions.{key}: must be a mapping")
        return None
    model = _settings_model(source, key, extension, problems)
    if model is None:
        return None
    try:
        return model.model_validate(normalise_keys(value, model))
    except ValidationError as exc:
        problems += _unavailable_first(source, key, extension)
        problems += validation_problems(source, exc, f"extensions.{key}")
        return None


def _settings_model(
    source: str, key: str, extension: Extension, problems: list[str]
) -> type[ExtensionSettings] | None:
    """The extension's settings model, or None with one problem naming the key: the
    not-installed one when the extension's dependencies are missing (the likely cause)."""
    try:
        return extension.settings_model()
    except (ImportError, TypeError) as exc:
        problems += _unavailable_first(source, key, extension) or [
            f"{source}: extensions.{key}: {exc}"
        ]
        return None


def _unavailable_first(source: str, key: str, extension: Extension) -> list[str]:
    unavailable = _unavailable(source, key, extension)
    return [unavailable] if unavailable else []


def settings_model_or_error(name: str, extension: Extension) -> type[ExtensionSettings]:
    """The extension's settings model for ``ocireg schema``; ConfigError naming it when it
    cannot be imported."""
    problems: list[str] = []
    model = _settings_model("ocireg schema", name, extension, problems)
    if model is None:
        raise ConfigError(problems)
    return model


def _unavailable(source: str, key: str, extension: Extension) -> str | None:
    missing = missing_modules(extension)
    if not missing:
        return None
    package = extension.distribution
    install = f"pip install '{package}[{extension.extra}]'" if extension.extra else "install them"
    return f"{source}: extensions.{key}: needs {', '.join(missing)}, not installed: {install}"


def _followed(source: str, name: str, leaders: list[str]) -> str:
    """Say that an extension runs although its section is absent (no surprises)."""
    why = " and ".join(f"extensions.{leader}" for leader in leaders)
    return (
        f"{source}: extensions.{name}: on because {why} is on, as in zot; "
        f"`{name}: {{enable: false}}` turns it off"
    )


def resolve(
    sections: dict[str, Any] | None,
    source: str,
    known: dict[str, Extension],
) -> tuple[list[Enabled], list[str]]:
    """The enabled extensions in ``known``'s order and warnings to log; problems raise
    ``ConfigError`` with one line per problem."""
    problems: list[str] = []
    warnings: list[str] = []
    chosen: dict[str, Enabled] = {}
    given = {str(key).lower(): (str(key), value) for key, value in (sections or {}).items()}
    for name, (key, value) in given.items():
        extension = known.get(name)
        if extension is None:
            if name in PLANNED:
                warnings.append(f"{source}: extensions.{key}: not implemented yet, ignored")
            else:
                names = ", ".join(sorted(known))
                problems.append(f"{source}: extensions.{key}: unknown extension (known: {names})")
            continue
        settings = _settings(source, key, extension, value, problems)
        if settings is not None and settings.enable:
            chosen[name] = Enabled(extension, settings)
            warnings += [f"{source}: extensions.{key}.{notice}" for notice in settings.notices()]
    for name, extension in known.items():
        if name in given:
            continue
        leaders = [leader for leader in extension.follows if leader in chosen]
        if extension.default_on or leaders:
            model = _settings_model(source, name, extension, problems)
            if model is None:
                continue
            chosen[name] = Enabled(extension, model())
        if leaders and not extension.default_on:
            warnings.append(_followed(source, name, leaders))
    for enabled in chosen.values():
        problems += [
            f"{source}: extensions.{enabled.name}: needs extensions.{need} enabled too"
            for need in enabled.extension.needs
            if need not in chosen
        ]
        unavailable = _unavailable(source, enabled.name, enabled.extension)
        if unavailable:
            problems.append(unavailable)
    if problems:
        raise ConfigError(problems)
    order = list(known)
    return sorted(chosen.values(), key=lambda e: order.index(e.name)), warnings


def check_all(config: Any, source: str, enabled: list[Enabled]) -> None:
    """Run the ``check`` hooks of the enabled extensions; ConfigError with their problems."""
    problems = []
    for each in enabled:
        if each.extension.check:
            found = _import(each.extension.check)(config, each.settings)
            problems += [f"{source}: extensions.{each.name}.{problem}" for problem in found]
    if problems:
        raise ConfigError(problems)


def load_setup(enabled: Enabled) -> Any:
    """The extension's setup function (imports its implementation, and so its dependencies)."""
    return _import(enabled.extension.setup)


def prepare_all(config: Any, enabled: list[Enabled]) -> None:
    """Run the ``prepare`` hooks of the enabled extensions, in the serving parent process."""
    for each in enabled:
        if each.extension.prepare:
            _import(each.extension.prepare)(config, each.settings)
