"""``lint``: refuse image manifests that lack the annotations an operator requires."""

from __future__ import annotations

from pydantic import Field

from ocireg.defaults import empty_list
from ocireg.extensions.declaration import Extension, ExtensionSettings


class LintSettings(ExtensionSettings):
    mandatoryAnnotations: list[str] = Field(
        default_factory=empty_list,
        description="Keys every pushed image must carry, as a manifest annotation or a config "
        "label.",
    )


EXTENSION = Extension(
    name="lint",
    description="Mandatory annotations on pushed images.",
    setup="ocireg.ext.lint.check:setup",
    settings=LintSettings,
)
