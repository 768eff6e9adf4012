"""The one table of OCI error codes, and the one error type handlers raise.

Every error the registry answers goes through :class:`RegistryError` and is rendered once, by
:func:`error_body`, as the distribution spec's ``{"errors":[{"code","message","detail"}]}``.
Inside connexion :mod:`ocireg.errorhandlers` answers it; middleware outside connexion (the
authentication and rate limits, the extensions' own routes) answers with :func:`error_response`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from starlette.responses import Response


@dataclass(frozen=True)
class _Code:
    message: str
    status: int


class ErrorCode(Enum):
    """OCI distribution-spec error codes (code-1 .. code-14), plus the extension code."""

    BLOB_UNKNOWN = _Code("blob unknown to registry", 404)
    BLOB_UPLOAD_INVALID = _Code("blob upload invalid", 400)
    BLOB_UPLOAD_UNKNOWN = _Code("blob upload unknown to registry", 404)
    DIGEST_INVALID = _Code("provided digest did not match uploaded content", 400)
    MANIFEST_BLOB_UNKNOWN = _Code("manifest references a manifest or blob unknown to registry", 404)
    MANIFEST_INVALID = _Code("manifest invalid", 400)
    MANIFEST_UNKNOWN = _Code("manifest unknown to registry", 404)
    NAME_INVALID = _Code("invalid repository name", 400)
    NAME_UNKNOWN = _Code("repository name not known to registry", 404)
    SIZE_INVALID = _Code("provided length did not match content length", 400)
    UNAUTHORIZED = _Code("authentication required", 401)
    DENIED = _Code("requested access to the resource is denied", 403)
    UNSUPPORTED = _Code("the operation is unsupported", 405)
    TOOMANYREQUESTS = _Code("too many requests", 429)
    # Legacy and extension codes the spec allows.
    TAG_INVALID = _Code("manifest tag did not match URI", 400)
    EXTENSION_UNKNOWN = _Code("extension unknown to registry", 404)
    # Storage the registry cannot write (full, read-only, not permitted): the server's failure,
    # which no code of the spec's table (all about the request) describes; distribution's
    # code for it, which Docker and containerd know. The status says which (507 or 503).
    UNAVAILABLE = _Code("service unavailable", 503)

    @property
    def message(self) -> str:
        return self.value.message

    @property
    def status(self) -> int:
        return self.value.status


@dataclass
class RegistryError(Exception):
    """An error answered to the client. ``status`` overrides the code's usual status."""

    code: ErrorCode
    detail: Any = None
    status: int | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.code.name, self.detail)

    @property
    def http_status(self) -> int:
        return self.status if self.status is not None else self.code.status

    def body(self) -> bytes:
        return error_body(self.code, self.detail, self.message)


def error_response(exc: RegistryError) -> Response:
    """The ASGI response for ``exc``, for code that answers outside connexion."""
    return Response(exc.body(), exc.http_status, headers=exc.headers, media_type="application/json")


def error_body(code: ErrorCode, detail: Any = None, message: str | None = None) -> bytes:
    entry: dict[str, Any] = {"code": code.name, "message": message or code.message}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}, separators=(",", ":")).encode()


def malformed_reference(reason: str, detail: dict[str, Any] | None = None) -> RegistryError:
    """A manifest GET or HEAD whose reference is neither a tag nor a digest: it names nothing
    that can exist, and a manifest that is not found MUST be 404 (the official conformance
    suite asks exactly that of ``.INVALID_MANIFEST_NAME``)."""
    return RegistryError(
        ErrorCode.MANIFEST_UNKNOWN,
        {**(detail or {}), "parameter": "reference", "reason": f"malformed reference: {reason}"},
    )
