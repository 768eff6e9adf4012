"""The ``extensions.search`` section (importable without strawberry: the configuration is
checked before any extension code is loaded)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ocireg.durations import Duration
from ocireg.extensions.declaration import ExtensionSettings

QUERY_TIMEOUT = "the query ran longer than extensions.search.limits.queryTimeout"


class SearchLimits(BaseModel):
    """What one GraphQL query may ask for. The defaults let every query zot's web UI and zli
    send through (tests run them) and refuse the ones that could stall the registry."""

    model_config = ConfigDict(extra="forbid")

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


class SearchSettings(ExtensionSettings):
    cve: dict[str, Any] | None = Field(
        None, description="zot's CVE scanning settings: accepted, not acted on yet (logged)."
    )
    limits: SearchLimits = Field(
        default_factory=SearchLimits, description="Bounds on what one GraphQL query may ask for."
    )
