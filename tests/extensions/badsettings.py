"""Extensions whose settings model, named as ``module:Class``, cannot be had: how ``ocireg
verify``, ``serve`` and ``schema`` say so (enable one with
``OCIREG_EXTENSIONS=tests.extensions.badsettings:NO_MODULE``)."""

from __future__ import annotations

from typing import Any

from ocireg.extensions import Extension


def _declare(name: str, settings: str, **more: Any) -> Extension:
    return Extension(name=name, description="d", setup="x:setup", settings=settings, **more)


NO_MODULE = _declare("nomodule", "tests.extensions.no_such_module:Settings")
NO_CLASS = _declare("noclass", "tests.extensions.badsettings:NoSuchClass")
NOT_SETTINGS = _declare("notsettings", "ocireg.config:Config")
# a settings module that imports the extension's optional dependency (it must not)
NOT_INSTALLED = _declare(
    "notinstalled",
    "ocireg_no_such_module.settings:Settings",
    extra="notinstalled",
    requires=("ocireg_no_such_module",),
)
DEFAULT_ON = _declare("defaulton", "tests.extensions.no_such_module:Settings", default_on=True)
