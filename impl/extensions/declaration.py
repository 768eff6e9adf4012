"""What an extension declares about itself, importable without any of its dependencies.

A declaration is cheap data: the registry reads it to validate the configuration, to tell an
operator which extra to install, to route the extension's OpenAPI fragments and to describe it
in `_oci` discovery. The code that needs the extension's dependencies is named by ``setup`` and
imported only when the extension is enabled.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

# The distribution spec's extensions README: `[a-z0-9]+([._-][a-z0-9]+)*` after the `_`.
_NAMESPACE_RE = re.compile(r"_[a-z0-9]+([._-][a-z0-9]+)*")
_NAME_RE = re.compile(r"[a-z][a-z0-9]*")
RESERVED_NAMESPACES = frozenset({"_oci", "_catalog"})


class ExtensionSettings(BaseModel):
    """The base of every extension's section under ``extensions``: zot's ``enable`` key.

    A section that is present is enabled unless it says ``enable: false``.
    """

    # Built on first use, not when defined: every known extension's declaration is imported
    # at start, and only the enabled ones' settings are ever validated (issue 13, start-up).
    # Subclasses inherit this.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    enable: bool = Field(True, description="Turn the extension off while keeping its settings.")

    def notices(self) -> list[str]:
        """Keys this section accepts but does not act on (zot's, for compatibility), each as
        ``key.path: why``, relative to the section: verify and start-up warn about them."""
        return []


@dataclass(frozen=True)
class Extension:
    """One extension: its configuration section, its API and where its code lives.

    ``name``         the key of its section under ``extensions`` (lowercase, e.g. ``lint``).
    ``description``  one sentence, shown in discovery.
    ``setup``        ``"module:function"``; the function receives a ``SetupContext`` and is
                     imported only when the extension is enabled, so ``module`` may import
                     the extension's dependencies.
    ``settings``     the pydantic model of its section (``ExtensionSettings`` or a subclass),
                     or ``"module:Class"`` naming it: imported only when the section is given
                     (or the extension is on without one), so a large settings model costs
                     nothing at a start that does not configure it. Read it with
                     :meth:`settings_model`.
    ``namespace``    for an HTTP extension, its URL namespace such as ``_zot`` or ``_ocireg``.
    ``specs``        its OpenAPI fragment files, relative to ``spec_package``'s directory.
    ``definition``   its definition document (``ext-<ns>-<name>.md``) in the OCI extension
                     format, relative to ``spec_package``'s directory.
    ``extra``        the extra of ``distribution`` that installs ``requires``.
    ``distribution`` the package that declares ``extra`` (``ocireg`` for built-in ones).
    ``requires``     importable top-level modules the extension needs beyond the core.
    ``default_on``   enabled without a configuration section (for built-in parts of the core
                     API such as the spec documents); ``enable: false`` still turns it off.
    ``follows``      names of extensions that turn this one on when it has no section of its
                     own (zot turns userprefs on with search); ``enable: false`` still wins.
    ``needs``        names of extensions that must be enabled too: the configuration is
                     refused without them (zot refuses ``ui`` without ``search``).
    ``prepare``      optional ``"module:function"`` called as ``function(config, settings)`` by
                     ``ocireg serve`` once, in the parent process, before any worker starts
                     (e.g. to set up state that several worker processes share).
    ``check``        optional ``"module:function"`` called as ``function(config, settings)``
                     when a configuration is loaded (``ocireg verify`` and ``serve``); it
                     returns problems with the rest of the configuration, each ``key: why``
                     relative to the extension's section, and any refuses it. Keep ``module``
                     light: it is imported whenever the extension is enabled.
    """

    name: str
    description: str
    setup: str
    settings: type[ExtensionSettings] | str = ExtensionSettings
    namespace: str | None = None
    specs: tuple[str, ...] = ()
    definition: str | None = None
    extra: str | None = None
    distribution: str = "ocireg"
    requires: tuple[str, ...] = ()
    default_on: bool = False
    follows: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    spec_package: str = "ocireg.spec"
    prepare: str | None = None
    check: str | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise ValueError(f"extension name {self.name!r} must match {_NAME_RE.pattern}")
        if self.namespace is not None:
            if not _NAMESPACE_RE.fullmatch(self.namespace):
                raise ValueError(f"namespace {self.namespace!r} must match {_NAMESPACE_RE.pattern}")
            if self.namespace in RESERVED_NAMESPACES:
                raise ValueError(f"namespace {self.namespace} is reserved by the OCI")
            if self.definition is None:
                raise ValueError(f"HTTP extension {self.name} needs a definition document")
        elif self.specs:
            raise ValueError(f"extension {self.name} has OpenAPI fragments but no namespace")
        for hook in (self.setup, self.prepare):
            if hook is not None and ":" not in hook:
                raise ValueError(f"extension {self.name}: {hook!r} must be 'module:function'")
        if isinstance(self.settings, str) and ":" not in self.settings:
            raise ValueError(f"extension {self.name}: {self.settings!r} must be 'module:Class'")

    def settings_model(self) -> type[ExtensionSettings]:
        """The model of the extension's section, imported now if ``settings`` names it;
        ImportError or TypeError (one line) when it cannot be."""
        if not isinstance(self.settings, str):
            return self.settings
        module, _, name = self.settings.partition(":")
        try:
            model = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"settings {self.settings} cannot be imported: {exc}") from exc
        if not (isinstance(model, type) and issubclass(model, ExtensionSettings)):
            raise TypeError(f"settings {self.settings} is not an ExtensionSettings")
        return model
