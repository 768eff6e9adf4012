"""``metrics``: Prometheus metrics with zot's names, correct across several worker processes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ocireg.extensions.declaration import Extension, ExtensionSettings


class PrometheusSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # see ExtensionSettings

    path: str = Field("/metrics", description="Where the metrics are served (outside /v2).")
    maxRepoLabels: int = Field(
        1000,
        ge=1,
        description="Repositories that get their own repo label, per process; requests to "
        'further ones are counted under repo="_other".',
    )

    @field_validator("path")
    @classmethod
    def _outside_v2(cls, path: str) -> str:
        if not path.startswith("/") or path == "/v2" or path.startswith("/v2/"):
            raise ValueError("must be an absolute path outside /v2, such as /metrics")
        return path


class MetricsSettings(ExtensionSettings):
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)


EXTENSION = Extension(
    name="metrics",
    description="Prometheus metrics (zot's metric names).",
    setup="ocireg.ext.metrics.exporter:setup",
    prepare="ocireg.ext.metrics.exporter:prepare",
    settings=MetricsSettings,
    extra="metrics",
    requires=("prometheus_client",),
)
