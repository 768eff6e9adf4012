"""Reading the pages' forms: URL-encoded and small, or refused before anything is parsed.

Starlette's ``request.form()`` would read a body of any size and also parse multipart; the
pages' forms are a few short fields, so anything else is a client's mistake (415, 413).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

MAX_FORM = 16 * 1024  # bytes: the largest form (a login) is well under a kilobyte
FORM_TYPE = "application/x-www-form-urlencoded"


class FormRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_form(request: Request) -> FormData:
    """The request's form; FormRefused (413, 415, 400) for a body that is not one."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if not media_type and declared in ("", "0"):
        media_type = FORM_TYPE  # no body at all: an empty form (its checks then refuse it)
    if media_type != FORM_TYPE:
        raise FormRefused(415, f"forms are sent as {FORM_TYPE}")
    if declared.isdigit() and int(declared) > MAX_FORM:
        raise FormRefused(413, f"a form is {MAX_FORM} bytes at most")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise FormRefused(413, f"a form is {MAX_FORM} bytes at most")
    try:
        fields: list[tuple[str, str | UploadFile]] = list(
            parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
        )
    except ValueError:  # not UTF-8, or too many fields
        raise FormRefused(400, "a form is UTF-8 text of 50 fields at most") from None
    return FormData(fields)
