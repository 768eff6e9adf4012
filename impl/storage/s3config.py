"""``storageDriver`` with ``name: s3``, in zot's (and distribution's) keys. Imported only
when a configuration has the key (see :mod:`ocireg.sections`); :mod:`ocireg.storage.s3` serves it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MIN_S3_PART = 5 << 20


class S3DriverConfig(BaseModel):
    """zot's (and distribution's) ``storageDriver`` keys for ``s3``. Keys of distribution's
    driver that ocireg does not build are kept, to be warned about by name (notices)."""

    model_config = ConfigDict(extra="allow")

    name: Literal["s3"]
    bucket: str = Field(min_length=3, description="The bucket holding the registry.")
    region: str | None = Field(None, description="AWS region; else AWS_REGION from the env.")
    regionendpoint: str | None = Field(
        None, description="S3-compatible endpoint URL (host:port takes its scheme from secure)."
    )
    rootdirectory: str = Field("", description="Key prefix of the registry in the bucket.")
    secure: bool = Field(True, description="HTTPS to the endpoint.")
    skipverify: bool = Field(False, description="Do not verify the endpoint's TLS certificate.")
    accesskey: str | None = Field(None, description="Else AWS_ACCESS_KEY_ID and the SDK chain.")
    secretkey: str | None = Field(None, description="Else AWS_SECRET_ACCESS_KEY.")
    sessiontoken: str | None = Field(None, description="Else AWS_SESSION_TOKEN.")
    forcepathstyle: bool | None = Field(
        None, description="Path-style bucket addressing; unset: the SDK decides."
    )
    chunksize: int = Field(
        10 << 20, ge=MIN_S3_PART, description="Bytes per multipart part (memory per upload)."
    )

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> S3DriverConfig:
        if bool(self.accesskey) != bool(self.secretkey):
            raise ValueError("accesskey and secretkey go together (or both come from the env)")
        return self

    def unbuilt_keys(self) -> list[str]:
        """Keys given that ocireg accepts but does not act on."""
        return sorted(self.model_extra or {})
