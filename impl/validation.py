"""Spec validation that answers with OCI error codes instead of generic problems.

connexion validates every parameter against ``spec/openapi.yaml``; this validator keeps that but
raises the code a registry client expects for the parameter that failed. Manifest bodies are
validated by the registry itself (with field-level details), so their JSON body validator is a
pass-through that never buffers. Other JSON bodies (search, API keys) are read into memory to be
validated, so they are read only up to their operation's ``x-ocireg-max-body`` (413 beyond it,
before anything more is read) and parsed with :mod:`ocireg.jsonparse` (deep nesting is a 400).

connexion builds a fresh jsonschema validator from a deep copy of the parameter's schema for
every parameter of every request; here each parameter's validator is built once, and a string
that plainly satisfies a string schema (pattern, maxLength and no checked format: the repository
name, a reference, a digest) is accepted without jsonschema. Anything else, and every failure,
goes through jsonschema, so error messages are connexion's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.lifecycle import ConnexionRequest
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, ValidationError
from starlette.datastructures import Headers, QueryParams
from starlette.types import Receive, Scope, Send

from ocireg import jsonparse
from ocireg.auth.access import RULE_KEY, parse_rule
from ocireg.errors import ErrorCode, RegistryError, malformed_reference
from ocireg.state import state_of

MAX_BODY_KEY = "x-ocireg-max-body"
DEFAULT_MAX_BODY = 64 * 1024  # bytes of a JSON request body whose operation declares no limit

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


def _not_found_when_reading(error: RegistryError, method: str) -> RegistryError:
    """A manifest GET or HEAD of a malformed reference is 404 (see :func:`malformed_reference`);
    a PUT or DELETE keeps its 400: there the client sends something invalid."""
    detail = error.detail if isinstance(error.detail, dict) else {}
    if method not in ("GET", "HEAD") or detail.get("parameter") != "reference":
        return error
    return malformed_reference(detail.get("reason", "neither a tag nor a digest"), detail)


Check = Callable[[Any], str | None]
_QUICK_KEYS = frozenset({"type", "pattern", "maxLength", "format", "description"})
_FORMATS = Draft4Validator.FORMAT_CHECKER
# id(param) -> (param, check); the param is kept so that a reused id cannot match another one
_CHECKS: dict[int, tuple[dict[str, Any], Check]] = {}


def _quick_accept(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    """A test that accepts only values jsonschema accepts too, for simple string schemas."""
    if schema.get("type") != "string" or not _QUICK_KEYS.issuperset(schema):
        return None
    if schema.get("format") in _FORMATS.checkers:
        return None
    pattern = re.compile(schema.get("pattern", ""))
    longest = schema.get("maxLength")

    def accept(value: Any) -> bool:
        return (
            isinstance(value, str)
            and (longest is None or len(value) <= longest)
            and pattern.search(value) is not None
        )

    return accept


def _check_for(param: dict[str, Any]) -> Check:
    cached = _CHECKS.get(id(param))
    if cached is not None and cached[0] is param:
        return cached[1]
    schema = param.get("schema", param)
    validator = Draft4Validator(schema, format_checker=_FORMATS)
    quick = _quick_accept(schema)

    def check(value: Any) -> str | None:
        if quick is not None and quick(value):
            return None
        try:
            validator.validate(value)
        except ValidationError as exception:
            return str(exception)
        return None

    _CHECKS[id(param)] = (param, check)
    return check


def _plain_string(param: dict[str, Any]) -> bool:
    """connexion's URI parser hands such a path parameter on exactly as routed."""
    schema = param.get("schema", param)
    return schema.get("type") == "string" and not is_nullable(param)


class _Parameters:
    """What ``validate_request`` reads from a request whose path parameters are plain strings:
    those straight from the scope, the rest from connexion's request, built only if needed."""

    def __init__(self, scope: Scope, uri_parser: Any) -> None:
        self.scope = scope
        self.path_params: dict[str, Any] = scope.get("path_params", {})
        self._uri_parser = uri_parser
        self._request: Any = None

    def _connexion(self) -> Any:
        if self._request is None:
            self._request = ConnexionRequest(self.scope, uri_parser=self._uri_parser)
        return self._request

    @property
    def query_params(self) -> Any:
        return self._connexion().query_params

    @property
    def headers(self) -> Any:
        return self._connexion().headers


class OCIParameterValidator(ParameterValidator):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plain_path = all(_plain_string(p) for p in self.parameters.get("path", []))
        self._integer_query = [p for p in self.parameters.get("query", []) if _is_integer(p)]

    def validate(self, scope: Scope) -> None:
        try:
            if not self._plain_path:
                super().validate(scope)
                return
            self.validate_request(_Parameters(scope, self.uri_parser))
        except RegistryError as error:
            raise _not_found_when_reading(error, scope["method"]) from None

    @staticmethod
    def validate_parameter(
        parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None
    ) -> str | None:
        """connexion's check of one parameter, with the schema's validator built once."""
        if is_nullable(param) and is_null(value):
            return None
        if value is not None:
            return _check_for(param)(value)
        if param.get("required"):
            return f"Missing {parameter_type} parameter '{param['name']}'"
        return None

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
        # after the schema's checks, so what int() refuses keeps jsonschema's message
        self._check_integers_as_written(request.scope)

    def _check_integers_as_written(self, scope: Scope) -> None:
        """An integer query parameter must be written in ASCII digits. connexion converts with
        ``int()``, which also takes a sign, spaces, ``_`` and other scripts' digits (``+5``,
        `` 5``, ``5_0``, ``-0``); the spec's integer, like HTTP's ``1*DIGIT``, has none of them."""
        if not self._integer_query:
            return
        written = QueryParams(scope.get("query_string", b""))
        for param in self._integer_query:
            for value in written.getlist(param["name"]):
                if not _DIGITS.fullmatch(value):
                    raise _error_for(param, value, f"{value!r} is not an integer in digits")


_DIGITS = re.compile(r"[0-9]+")


def _is_integer(param: dict[str, Any]) -> bool:
    schema: dict[str, Any] = param.get("schema", param)
    return schema.get("type") == "integer"


_BODY_CACHE = 32  # (media type, charset) pairs remembered per operation; clients choose them


class OCIRequestValidationOperation(RequestValidationOperation):  # type: ignore[misc]
    """connexion's request validation with what depends only on the operation built once.

    connexion builds a URI parser and a parameter validator for every request, and for every
    request with a body looks the media type up in the operation's ``consumes`` and in the
    validator map (both sorted and fnmatch'ed each time) and builds a body validator. The
    same checks run here in the same order; their operation-dependent parts are kept, and
    operations without a request body skip the media type steps, which do nothing for them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parameters: Any = None
        self._bodies: dict[tuple[str, str], Any] = {}
        # without a requestBody connexion's media type steps accept anything and validate nothing
        self._has_body = bool(self._operation.request_body)
        where = f"{self._operation.method.upper()} {self._operation.path}"
        self._rule = parse_rule(self._operation._operation.get(RULE_KEY), where)

    def _parameter_validator(self) -> Any:
        if self._parameters is None:
            operation = self._operation
            uri_parser = operation._uri_parser_class(
                operation.parameters, operation.body_definition()
            )
            self._parameters = self._validator_map["parameter"](
                operation.parameters,
                uri_parser=uri_parser,
                strict_validation=self.strict_validation,
                security_query_params=self.security_query_params,
            )
        return self._parameters

    def _body_validator(self, mime_type: str, encoding: str) -> Any:
        """The body validator for this media type (None: nothing to validate); raises 415."""
        key = (mime_type, encoding)
        if key in self._bodies:
            return self._bodies[key]
        self.validate_mime_type(mime_type)
        operation = self._operation
        validator = None
        schema = operation.body_schema(mime_type)
        if schema:
            body_validator = self._validator_map["body"].get(mime_type)
            if body_validator is not None:
                validator = body_validator(
                    schema=schema,
                    required=operation.request_body.get("required", False),
                    nullable=is_nullable(operation.body_definition(mime_type)),
                    encoding=encoding,
                    strict_validation=self.strict_validation,
                    max_body=operation.request_body.get(MAX_BODY_KEY, DEFAULT_MAX_BODY),
                    uri_parser=operation.uri_parser_class(
                        operation.parameters, operation.body_definition()
                    ),
                )
        if len(self._bodies) < _BODY_CACHE:
            self._bodies[key] = validator
        return validator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Authorization before validation: a caller who may not touch the repository learns
        # nothing from a 400 or 415 about its request, only the 401 or 403.
        guard = state_of(scope).guard
        if guard is not None:
            await guard.authorize(scope, self._rule, scope.get("path_params", {}))
        self._parameter_validator().validate(scope)
        if self._has_body and _sends_a_body(scope["headers"]):
            mime_type, encoding = self.extract_content_type(scope["headers"])
            validator = self._body_validator(mime_type, encoding)
            if validator is not None:
                receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)


def _sends_a_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request has a body (RFC 9112 §6.3: without Transfer-Encoding, a missing
    Content-Length means none). A request without one has no media type to check, whatever
    its Content-Type says: ``curl -d ''`` and Python's urllib send a form type on an empty POST,
    and docker-registry and zot start the upload all the same."""
    length = None
    for name, value in headers:
        name = name.lower()
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            length = value.strip()
    return length is not None and length != b"0"


class OCIRequestValidationAPI(RequestValidationAPI):  # type: ignore[misc]
    def make_operation(self, operation: Any) -> OCIRequestValidationOperation:
        return OCIRequestValidationOperation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class OCIRequestValidationMiddleware(RequestValidationMiddleware):  # type: ignore[misc]
    api_cls = OCIRequestValidationAPI


class PassThroughBodyValidator:
    """Leaves the body untouched: the handler streams and validates it."""

    def __init__(self, **_: Any) -> None:
        pass

    async def wrap_receive(self, receive: Any, *, scope: Any) -> tuple[Any, Any]:
        return receive, scope


def body_too_large(limit: int) -> RegistryError:
    return RegistryError(
        ErrorCode.UNSUPPORTED,
        {"limit": limit},
        status=413,
        message=f"request body larger than {limit} bytes",
    )


class LimitedJSONBodyValidator(JSONRequestBodyValidator):  # type: ignore[misc]
    """connexion's JSON body validation, reading at most ``max_body`` bytes (413 beyond), and
    parsing with a bound on nesting (400 beyond)."""

    def __init__(self, *, max_body: int = DEFAULT_MAX_BODY, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._max_body = max_body

    async def _parse(self, stream: Any, scope: Scope) -> Any:
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise body_too_large(self._max_body)
        body, size = [], 0
        async for chunk in stream:
            size += len(chunk)
            if size > self._max_body:
                raise body_too_large(self._max_body)
            body.append(chunk)
        text = b"".join(body).decode(self._encoding)
        if not text:
            return None
        try:
            return jsonparse.loads(text)
        except jsonparse.JSONError as exc:
            raise BadRequestProblem(detail=f"the body is not acceptable JSON: {exc}") from None


def validator_map() -> dict[str, Any]:
    body = MediaTypeDict(dict(VALIDATOR_MAP["body"]))
    body["*/*json"] = LimitedJSONBodyValidator
    body["application/vnd.oci.*"] = PassThroughBodyValidator
    body["application/vnd.docker.*"] = PassThroughBodyValidator
    # No operation takes a form: a raw body sent with a form type (curl --data-binary's
    # default, as zot's docs upload trust keys) goes to the handler as it is, unparsed.
    body["application/x-www-form-urlencoded"] = PassThroughBodyValidator
    body["multipart/form-data"] = PassThroughBodyValidator
    return {"parameter": OCIParameterValidator, "body": body}
