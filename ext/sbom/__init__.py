"""``sbom``: an image's inventory (the packages its layers hold) as a CycloneDX JSON document,
read from its layers on each request by the CVE extension's inventory readers."""

from __future__ import annotations

from ocireg.extensions.declaration import Extension

EXTENSION = Extension(
    name="sbom",
    description="An image's packages as a CycloneDX 1.5 JSON SBOM.",
    setup="ocireg.ext.sbom.handlers:setup",
    namespace="_ocireg",
    specs=("ext/ext-ocireg-sbom.yaml",),
    definition="ext/ext-ocireg-sbom.md",
    extra="cve",
    requires=("cyclonedx", "packageurl"),
)
