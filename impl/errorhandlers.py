"""Turn every failure into the spec's error body, with the right status and headers.

Handlers raise :class:`RegistryError`; connexion raises problems for spec violations it detects
(routing 404/405, media types); starlette raises on broken bodies. All of them end here, so a
client always receives ``{"errors":[...]}`` and never a bare 500 for its own bad input.
"""

from __future__ import annotations

import errno
import logging
import re
import sys
from typing import Any

from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from python_multipart.exceptions import MultipartParseError
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect

from ocireg.errors import ErrorCode, RegistryError, error_body
from ocireg.logs import event

log = logging.getLogger("ocireg.errors")


def _response(
    status: int,
    code: ErrorCode,
    detail: Any = None,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=status,
        mimetype="application/json",
        body=error_body(code, detail, message),
        headers=dict(headers or {}),
    )


def registry_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, RegistryError)
    return _response(exc.http_status, exc.code, exc.detail, exc.message, exc.headers)


def _unsupported_media_type(path: str, reason: Any) -> ConnexionResponse:
    """A manifest in a type we do not take is an invalid manifest (400, as the spec's
    conformance suite expects); an upload's is an invalid upload; anything else (search,
    API keys) has no code of its own."""
    if "/manifests/" in path:
        return _response(400, ErrorCode.MANIFEST_INVALID, {"reason": reason})
    code = ErrorCode.BLOB_UPLOAD_INVALID if "/blobs/uploads/" in path else ErrorCode.UNSUPPORTED
    return _response(415, code, {"reason": reason})


# What a storage failure tells the client: a full disk (or quota) is 507 Insufficient Storage;
# storage the registry may not write (permissions, a read-only mount) is 503, an operator's
# matter. Any other OSError stays a 500. The file and errno go to the log, not to the client.
_STORAGE_FAILURES: dict[int, tuple[int, str]] = {
    errno.ENOSPC: (507, "storage is full"),
    errno.EDQUOT: (507, "storage is full"),
    errno.EACCES: (503, "storage is not writable"),
    errno.EPERM: (503, "storage is not writable"),
    errno.EROFS: (503, "storage is not writable"),
}


def storage_failure(request: ConnexionRequest, exc: OSError) -> ConnexionResponse | None:
    """The answer to a storage failure the client should hear about, logged; None for others."""
    known = _STORAGE_FAILURES.get(exc.errno) if exc.errno is not None else None
    if known is None:
        return None
    status, reason = known
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    logged = {"file": exc.filename, "errno": name, "error": exc.strerror}
    return _unavailable(request, "storage failure", status, reason, {"errno": name}, logged)


def storage_unreachable(request: ConnexionRequest, exc: Exception) -> ConnexionResponse | None:
    """503 for storage that did not answer in time or could not be reached (S3: botocore's
    connection and timeout errors, once its retries are spent), logged in one line; None for
    other errors. botocore is looked up, not imported: a registry on local disk never loads it."""
    boto = sys.modules.get("botocore.exceptions")
    if boto is None or not isinstance(exc, (boto.ConnectionError, boto.HTTPClientError)):
        return None
    reason = "storage is unreachable"
    return _unavailable(request, "storage unreachable", 503, reason, {}, {"error": str(exc)})


def _unavailable(
    request: ConnexionRequest,
    what: str,
    status: int,
    reason: str,
    detail: dict[str, Any],
    logged: dict[str, Any],
) -> ConnexionResponse:
    """Storage's failure, logged in one line (``what``, the request, ``logged``) and answered
    ``UNAVAILABLE`` with ``reason`` (and ``detail``) for the client."""
    event(log, logging.ERROR, what, method=request.method, path=request.url.path, **logged)
    body = {"reason": reason, **detail}
    return _response(status, ErrorCode.UNAVAILABLE, body, f"service unavailable: {reason}")


class AllowedMethods:
    """The methods the spec declares for a path, for 405 answers (starlette's are partial)."""

    def __init__(self, spec_paths: dict[str, dict[str, Any]]) -> None:
        self._routes: list[tuple[re.Pattern[str], str]] = []
        for template, item in spec_paths.items():
            pattern = re.sub(r"\\{name\\}", "(.+)", re.escape(template))
            pattern = re.sub(r"\\{[a-z_]+\\}", "([^/]+)", pattern)
            methods = [
                m.upper() for m in item if m in {"get", "head", "put", "post", "patch", "delete"}
            ]
            if "GET" in methods and "HEAD" not in methods:
                methods.append("HEAD")
            self._routes.append((re.compile(pattern), ", ".join(sorted(methods))))

    def for_path(self, path: str) -> str | None:
        for pattern, methods in self._routes:
            if pattern.fullmatch(path):
                return methods
        return None


def install(app: AsyncApp, allowed: AllowedMethods) -> None:
    def http_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        path = request.url.path
        if status == 405:
            allow = allowed.for_path(path) or ""
            return _response(
                405,
                ErrorCode.UNSUPPORTED,
                {"method": request.method, "allow": allow},
                headers={"Allow": allow},
            )
        if status == 404:
            extension = any(part.startswith("_") for part in path.split("/")[2:])
            code = ErrorCode.EXTENSION_UNKNOWN if extension else ErrorCode.NAME_UNKNOWN
            return _response(404, code, {"path": path}, "no such endpoint")
        return _response(status, ErrorCode.UNSUPPORTED, {"reason": str(getattr(exc, "detail", ""))})

    def problem(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, ProblemException)
        if exc.status == 415:
            return _unsupported_media_type(request.url.path, exc.detail)
        if exc.status in (404, 405):
            return http_error(request, HTTPException(exc.status, str(exc.detail)))
        status = exc.status if 400 <= exc.status < 500 else 500
        return _response(status, ErrorCode.UNSUPPORTED, {"reason": exc.detail}, exc.title)

    def bad_body(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        return _response(400, ErrorCode.UNSUPPORTED, {"reason": f"unreadable request: {exc}"})

    def disconnected(_request: ConnexionRequest, _exc: Exception) -> ConnexionResponse:
        return _response(400, ErrorCode.BLOB_UPLOAD_INVALID, {"reason": "client disconnected"})

    def unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        answer = storage_failure(request, exc) if isinstance(exc, OSError) else None
        answer = answer or storage_unreachable(request, exc)
        if answer is not None:
            return answer
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return ConnexionResponse(
            status_code=500,
            mimetype="application/json",
            body=b'{"errors":[{"code":"UNKNOWN","message":"internal server error"}]}',
        )

    app.add_error_handler(RegistryError, registry_error)
    app.add_error_handler(ProblemException, problem)
    app.add_error_handler(HTTPException, http_error)
    for broken in (MultiPartException, MultipartParseError, UnicodeDecodeError):
        app.add_error_handler(broken, bad_body)
    app.add_error_handler(ClientDisconnect, disconnected)
    app.add_error_handler(Exception, unexpected)
