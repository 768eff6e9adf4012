"""``clientreport``: the strict-client report. While on, the registry records every departure
that its clients make from the distribution spec, per client (User-Agent) and per rule, and
serves the report to administrators at ``GET /v2/_ocireg/clients/report``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ocireg.extensions.declaration import Extension, ExtensionSettings


class ClientReportSettings(ExtensionSettings):
    maxClients: int = Field(
        100,
        ge=1,
        le=10_000,
        description="User-Agents that get their own entry; departures of further ones are "
        'counted under the client "(other clients)", so a client that varies its User-Agent '
        "cannot grow the report.",
    )


def check(config: Any, _settings: ClientReportSettings) -> list[str]:
    """Refuse several workers: the report lives in one process's memory, and a client's
    requests spread over the workers would each be judged without the others."""
    workers = config.http.workers
    if workers > 1:
        return [f"enable: needs http.workers 1, not {workers} (the report is in one process)"]
    return []


EXTENSION = Extension(
    name="clientreport",
    description="The strict-client report: how each client departs from the distribution spec.",
    setup="ocireg.ext.clientreport.handlers:setup",
    check="ocireg.ext.clientreport:check",
    namespace="_ocireg",
    specs=("ext/ext-ocireg-clientreport.yaml",),
    definition="ext/ext-ocireg-clientreport.md",
    settings=ClientReportSettings,
)
