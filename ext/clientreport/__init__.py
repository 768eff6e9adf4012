"""``clientreport``: the strict-client report. While on, the registry records every departure
that its clients make from the distribution spec, per client (User-Agent) and per rule, and
serves the report to administrators at ``GET /v2/_ocireg/clients/report``."""

from __future__ import annotations

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


EXTENSION = Extension(
    name="clientreport",
    description="The strict-client report: how each client departs from the distribution spec.",
    setup="ocireg.ext.clientreport.handlers:setup",
    prepare="ocireg.ext.clientreport.handlers:prepare",
    namespace="_ocireg",
    specs=("ext/ext-ocireg-clientreport.yaml",),
    definition="ext/ext-ocireg-clientreport.md",
    settings=ClientReportSettings,
)
