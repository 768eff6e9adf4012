"""Serve the documents of enabled extensions by file name, and the generated overview of each
namespace (``ext-<ns>.md``) that discovery links to when several extensions share it."""

from __future__ import annotations

from pathlib import PurePosixPath

from starlette.responses import Response

from ocireg.errors import ErrorCode, RegistryError
from ocireg.extensions.namespaces import by_namespace, overview, overview_name
from ocireg.extensions.runtime import SetupContext
from ocireg.extensions.specs import documents, spec_file
from ocireg.handlers.base import app_state

MEDIA_TYPES = {".md": "text/markdown; charset=utf-8", ".yaml": "application/yaml"}


def setup(_context: SetupContext) -> None:
    return None


async def get_document(document: str) -> Response:
    for active in app_state().extensions.values():
        extension = active.enabled.extension
        for filename in documents(extension):
            if PurePosixPath(filename).name == document:
                content = spec_file(extension, filename).read_bytes()
                media_type = MEDIA_TYPES[PurePosixPath(filename).suffix]
                return Response(content, headers={"Content-Type": media_type})
    for namespace, members in by_namespace(app_state().extensions.values()).items():
        if overview_name(namespace) == document:
            text = overview(namespace, members)
            return Response(text.encode(), headers={"Content-Type": MEDIA_TYPES[".md"]})
    raise RegistryError(
        ErrorCode.EXTENSION_UNKNOWN,
        {"document": document},
        message="no enabled extension has this document",
    )
