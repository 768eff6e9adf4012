"""The ``extensions.search`` section (importable without strawberry: the configuration is
checked before any extension code is loaded)."""

from __future__ import annotations

import importlib.util
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ocireg.defaults import empty_list
from ocireg.durations import Duration
from ocireg.extensions.declaration import ExtensionSettings

QUERY_TIMEOUT = "the query ran longer than extensions.search.limits.queryTimeout"


class SearchLimits(BaseModel):
    """What one GraphQL query may ask for. The defaults let every query zot's web UI and zli
    send through (tests run them) and refuse the ones that could stall the registry."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # see ExtensionSettings

    maxDepth: int = Field(
        15, ge=1, le=100, description="Fields nested in fields (the full introspection: 15)."
    )
    maxAliases: int = Field(
        10,
        ge=0,
        description="Aliased fields in one query (the web UI and zli send none): each alias "
        "of a query field runs it once more.",
    )
    maxPageSize: int = Field(100, ge=1, description="Largest requestedPage.limit.")
    maxCost: int = Field(
        75_000,
        ge=1,
        description="Most result fields a query can produce, estimated before it runs: a list "
        "counts as its page size, maxPageSize for a page without a limit, 10 without a page.",
    )
    maxTokens: int = Field(2_000, ge=100, description="Most tokens in a query document.")
    maxResultItems: int = Field(
        50_000,
        ge=1,
        description="Most layer and history entries one answer may hold, counted as the query "
        "runs: how many layers an image has is unknown to the estimate (maxCost) until then. "
        "The default lets the web UI show an image of 25,000 layers (its layers and history).",
    )
    queryTimeout: Duration = Field(
        10.0, gt=0, description="A query still running after this long stops with an error."
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Queries running at once for each worker process, each in a search "
        "process of its own below the registry's CPU priority (in threads when there is no "
        "storage root); others wait their turn. More answer searches sooner under load, "
        "at the cost of memory and of CPU time the rest of the registry could use.",
    )


class CveSettings(BaseModel):
    """``extensions.search.cve``: CVE scanning from OSV data (present: on)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)  # see ExtensionSettings

    updateInterval: Duration = Field(
        7200.0,
        gt=0,
        description="How often the sources are read again (and the images an update "
        "can affect matched again). zot's key and default (2h).",
    )
    sources: list[str] = Field(
        default_factory=empty_list,
        description="OSV exports to import: paths of zip files, tar files, directories of OSV "
        "JSON or single files, http(s) URLs of such files (osv.dev's per-ecosystem all.zip), "
        "or OCI artifacts of OSV data (oci://HOST[:PORT]/REPOSITORY:TAG, oci+http:// "
        "without TLS; zot's trivy.dbRepository in OSV form). Empty: only `ocireg cve "
        "update` imports data.",
    )
    attachSBOM: bool = Field(
        False,
        description="Push each scanned image's SBOM (CycloneDX JSON) as a referrer of the "
        "image, so that `oras discover` lists it.",
    )
    trivy: dict[str, Any] | None = Field(
        None,
        description="zot's trivy settings: accepted and warned about; ocireg reads OSV "
        "data (sources), not trivy's database.",
    )

    @field_validator("sources")
    @classmethod
    def _oci_references(cls, sources: list[str]) -> list[str]:
        from ocireg.ext.cve.artifact import is_oci, parse_reference

        for source in sources:
            if is_oci(source):
                parse_reference(source)  # a ValueError naming the source when malformed
        return sources

    @model_validator(mode="after")
    def _installed(self) -> CveSettings:
        missing = [m for m in ("univers", "cvss") if importlib.util.find_spec(m) is None]
        if missing:
            raise ValueError(
                f"CVE scanning needs {', '.join(missing)}, not installed: pip install 'ocireg[cve]'"
            )
        return self

    def notices(self) -> list[str]:
        """zot's trivy keys, each named: accepted so that a zot configuration loads."""
        if self.trivy is None:
            return []
        why = "ocireg scans with OSV data (cve.sources), not trivy's database; ignored"
        return [f"cve.trivy.{key}: {why}" for key in self.trivy] or [f"cve.trivy: {why}"]


class SearchSettings(ExtensionSettings):
    cve: CveSettings | None = Field(
        None,
        description="CVE scanning: OSV data imported by `ocireg cve update` or from sources, "
        "images scanned at push and in the background, results kept in the meta DB.",
    )
    limits: SearchLimits = Field(
        default_factory=SearchLimits, description="Bounds on what one GraphQL query may ask for."
    )

    def notices(self) -> list[str]:
        return self.cve.notices() if self.cve is not None else []
