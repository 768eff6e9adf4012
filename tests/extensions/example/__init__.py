"""A small extension that lives in the tests: the worked example of docs/extension-authors.md.

``quota`` answers ``GET /v2/<name>/_example/ext/quota`` with a repository's usage and limit, and
refuses manifest pushes to a repository whose blobs already exceed ``limitBytes``.
"""

from __future__ import annotations

from pydantic import Field

from ocireg.extensions import Extension, ExtensionSettings


class QuotaSettings(ExtensionSettings):
    limitBytes: int = Field(1 << 30, ge=0, description="Bytes of blobs a repository may hold.")


EXTENSION = Extension(
    name="quota",
    description="Per-repository storage usage and a push limit (an example extension).",
    setup="tests.extensions.example.quota:setup",
    settings=QuotaSettings,
    namespace="_example",
    specs=("ext-example-quota.yaml",),
    definition="ext-example-quota.md",
    spec_package="tests.extensions.example",
)
