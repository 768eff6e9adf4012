"""``scrub``: verify stored images against their digests in the background, as zot does."""

from __future__ import annotations

from pydantic import Field

from ocireg.durations import Duration
from ocireg.extensions.declaration import Extension, ExtensionSettings


class ScrubSettings(ExtensionSettings):
    interval: Duration = Field(24 * 3600.0, gt=0, description="How often every image is checked.")


EXTENSION = Extension(
    name="scrub",
    description="Periodic verification of every stored image's digests.",
    setup="ocireg.ext.scrub.job:setup",
    settings=ScrubSettings,
)
