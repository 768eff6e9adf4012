from __future__ import annotations

import json
import re

from ocireg.errors import ErrorCode, RegistryError, error_body

SPEC_CODES = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 404,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
}


def test_every_spec_code_is_in_the_table() -> None:
    for code, status in SPEC_CODES.items():
        assert ErrorCode[code].status == status
        assert re.fullmatch(r"[A-Z_]+", code)


def test_body_shape() -> None:
    body = json.loads(error_body(ErrorCode.BLOB_UNKNOWN, {"digest": "d"}))
    assert body == {
        "errors": [
            {
                "code": "BLOB_UNKNOWN",
                "message": "blob unknown to registry",
                "detail": {"digest": "d"},
            }
        ]
    }
    assert "detail" not in json.loads(error_body(ErrorCode.DENIED))["errors"][0]


def test_status_override_and_headers() -> None:
    error = RegistryError(ErrorCode.DENIED, status=405, headers={"X": "y"})
    assert error.http_status == 405
    assert json.loads(error.body())["errors"][0]["code"] == "DENIED"
    assert RegistryError(ErrorCode.DENIED).http_status == 403
