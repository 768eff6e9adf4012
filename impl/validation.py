"""Spec validation that answers with OCI error codes instead of generic problems.

connexion validates every parameter against ``spec/openapi.yaml``; this validator keeps that but
raises the code a registry client expects for the parameter that failed. Manifest bodies are
validated by the registry itself (with field-level details), so their JSON body validator is a
pass-through that never buffers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.validators import VALIDATOR_MAP, ParameterValidator

from ocireg.errors import ErrorCode, RegistryError

_CODES: dict[str, tuple[ErrorCode, int | None]] = {
    "name": (ErrorCode.NAME_INVALID, None),
    "from": (ErrorCode.NAME_INVALID, None),
    "digest": (ErrorCode.DIGEST_INVALID, None),
    "mount": (ErrorCode.DIGEST_INVALID, None),
    "tag": (ErrorCode.TAG_INVALID, None),
    "session_id": (ErrorCode.BLOB_UPLOAD_UNKNOWN, None),
    "Content-Range": (ErrorCode.BLOB_UPLOAD_INVALID, 416),
}


def _error_for(param: dict[str, Any], value: Any, reason: str) -> RegistryError:
    name = param["name"]
    if name == "reference":
        code = ErrorCode.DIGEST_INVALID if ":" in str(value) else ErrorCode.TAG_INVALID
        status = None
    else:
        code, status = _CODES.get(name, (ErrorCode.UNSUPPORTED, 400))
    detail = {"parameter": name, "in": param["in"], "reason": reason.split("\n", 1)[0]}
    return RegistryError(code, detail, status=status)


class OCIParameterValidator(ParameterValidator):  # type: ignore[misc]
    def validate_request(self, request: Any) -> None:
        getters: dict[str, Callable[[dict[str, Any]], Any]] = {
            "query": lambda p: request.query_params.get(p["name"]),
            "path": lambda p: request.path_params.get(p["name"].replace("-", "_")),
            "header": lambda p: request.headers.get(p["name"]),
        }
        for where, getter in getters.items():
            for param in self.parameters.get(where, []):
                validate: Callable[..., str | None] = getattr(self, f"validate_{where}_parameter")
                error = validate(param, request)
                if error:
                    raise _error_for(param, getter(param), error)


class PassThroughBodyValidator:
    """Leaves the body untouched: the handler streams and validates it."""

    def __init__(self, **_: Any) -> None:
        pass

    async def wrap_receive(self, receive: Any, *, scope: Any) -> tuple[Any, Any]:
        return receive, scope


def validator_map() -> dict[str, Any]:
    body = MediaTypeDict(dict(VALIDATOR_MAP["body"]))
    body["application/vnd.oci.*"] = PassThroughBodyValidator
    body["application/vnd.docker.*"] = PassThroughBodyValidator
    return {"parameter": OCIParameterValidator, "body": body}
