"""Set-up (the watcher around the whole app) and the report endpoint."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from ocireg.configcheck import ConfigError
from ocireg.extensions import state
from ocireg.extensions.runtime import SetupContext

from . import ClientReportSettings
from .book import Book
from .watcher import ClientReportMiddleware


def prepare(config: Any, _settings: ClientReportSettings) -> None:
    """Refuse several workers: the report lives in one process's memory, and a client's
    requests spread over the workers would be judged each without the others."""
    if config.http.workers > 1:
        raise ConfigError(
            [
                "extensions.clientreport: needs http.workers 1 (the report is kept in the "
                f"memory of one process; http.workers is {config.http.workers})"
            ]
        )


def setup(context: SetupContext) -> Book:
    settings: ClientReportSettings = context.settings
    book = Book(settings.maxClients)
    context.watch_requests(lambda app: ClientReportMiddleware(app, book))
    return book


async def get_report() -> JSONResponse:
    book: Book = state("clientreport")
    return JSONResponse(book.as_json())
