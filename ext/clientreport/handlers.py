"""Set-up (the watcher around the whole app) and the report endpoint."""

from __future__ import annotations

from starlette.responses import JSONResponse

from ocireg.extensions import state
from ocireg.extensions.runtime import SetupContext

from . import ClientReportSettings
from .book import Book
from .watcher import ClientReportMiddleware


def setup(context: SetupContext) -> Book:
    settings: ClientReportSettings = context.settings
    book = Book(settings.maxClients)
    context.watch_requests(lambda app: ClientReportMiddleware(app, book))
    return book


async def get_report() -> JSONResponse:
    book: Book = state("clientreport")
    return JSONResponse(book.as_json())
