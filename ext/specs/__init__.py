"""``specs``: the registry serves each enabled extension's definition document and OpenAPI
fragments, so the ``url`` that `_oci` discovery gives can be fetched from the registry itself."""

from __future__ import annotations

from ocireg.extensions.declaration import Extension

EXTENSION = Extension(
    name="specs",
    description="Definition documents and OpenAPI fragments of this registry's extensions.",
    setup="ocireg.ext.specs.handlers:setup",
    namespace="_ocireg",
    specs=("ext/ext-ocireg-specs.yaml",),
    definition="ext/ext-ocireg-specs.md",
    default_on=True,
)
