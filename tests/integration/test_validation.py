"""Spec violations answer with the OCI code for the parameter and connexion's own reason.

The request validation is connexion's, with its validators built once per operation and plain
matches accepted without jsonschema (``ocireg.validation``); these pin the answers to what
connexion's per-request validation gave, parameter by parameter.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

REFERENCE = r"^([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}|[a-z0-9]+([.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$"
OCI = "application/vnd.oci.image.manifest.v1+json"
SESSION = "0" * 32


def _spec_error(code: str, message: str, name: str, where: str, reason: str) -> dict[str, Any]:
    detail = {"parameter": name, "in": where, "reason": reason}
    return {"errors": [{"code": code, "message": message, "detail": detail}]}


TAG = ("TAG_INVALID", "manifest tag did not match URI")
NAME_INVALID = ("NAME_INVALID", "invalid repository name")
MANIFEST_UNKNOWN = ("MANIFEST_UNKNOWN", "manifest unknown to registry")
UNSUPPORTED = ("UNSUPPORTED", "the operation is unsupported")
DIGEST = ("DIGEST_INVALID", "provided digest did not match uploaded content")
UPLOAD_UNKNOWN = ("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
UPLOAD_INVALID = ("BLOB_UPLOAD_INVALID", "blob upload invalid")
NAME_PATTERN = r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$"

CASES: list[tuple[str, str, dict[str, Any], int, dict[str, Any]]] = [
    (
        "GET",
        "/v2/v/a/manifests/-x",
        {},
        404,
        _spec_error(
            *MANIFEST_UNKNOWN,
            "reference",
            "path",
            f"malformed reference: '-x' does not match '{REFERENCE}'",
        ),
    ),
    (
        "DELETE",
        "/v2/v/a/manifests/-x",
        {},
        400,
        _spec_error(*TAG, "reference", "path", f"'-x' does not match '{REFERENCE}'"),
    ),
    (
        "GET",
        "/v2/V/a/manifests/v1",
        {},
        400,
        _spec_error(*NAME_INVALID, "name", "path", f"'V/a' does not match {NAME_PATTERN!r}"),
    ),
    (
        "GET",
        "/v2/v//a/manifests/v1",
        {},
        400,
        _spec_error(*NAME_INVALID, "name", "path", f"'v//a' does not match {NAME_PATTERN!r}"),
    ),
    (
        "GET",
        f"/v2/{'a' * 300}/manifests/v1",
        {},
        400,
        _spec_error(*NAME_INVALID, "name", "path", f"'{'a' * 300}' is too long"),
    ),
    (
        "PUT",
        "/v2/v/a/manifests/v4",
        {"params": {"tag": "-bad"}, "headers": {"Content-Type": OCI}, "content": b"{}"},
        400,
        _spec_error(
            *TAG, "tag", "query", "'-bad' does not match '^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$'"
        ),
    ),
    (
        "GET",
        "/v2/v/a/tags/list",
        {"params": {"n": "abc"}},
        400,
        _spec_error(*UNSUPPORTED, "n", "query", "'abc' is not of type 'integer'"),
    ),
    (
        "GET",
        "/v2/_catalog",
        {"params": {"n": "-1"}},
        400,
        _spec_error(*UNSUPPORTED, "n", "query", "-1 is less than the minimum of 0"),
    ),
    (
        "POST",
        "/v2/v/a/blobs/uploads/",
        {"params": {"digest-algorithm": "md5"}},
        400,
        _spec_error(
            *UNSUPPORTED,
            "digest-algorithm",
            "query",
            "'md5' is not one of ['sha256', 'sha512']",
        ),
    ),
    (
        "PUT",
        "/v2/v/a/blobs/uploads/xyz",
        {"params": {"digest": "sha256:" + "a" * 64}},
        404,
        _spec_error(*UPLOAD_UNKNOWN, "session_id", "path", "'xyz' does not match '^[0-9a-f]{32}$'"),
    ),
    (
        "PUT",
        f"/v2/v/a/blobs/uploads/{SESSION}",
        {},
        400,
        _spec_error(*DIGEST, "digest", "query", "Missing query parameter 'digest'"),
    ),
    (
        "PATCH",
        f"/v2/v/a/blobs/uploads/{SESSION}",
        {"headers": {"Content-Range": "bad"}},
        416,
        _spec_error(
            *UPLOAD_INVALID, "Content-Range", "header", "'bad' does not match '^[0-9]+-[0-9]+$'"
        ),
    ),
    (
        "POST",
        "/v2/v/a/blobs/uploads/",
        {
            "params": {"digest": "sha256:" + "a" * 64},
            "headers": {"Content-Type": "text/plain"},
            "content": b"x",  # an empty body has no media type to check
        },
        415,
        {
            "errors": [
                {
                    "code": "BLOB_UPLOAD_INVALID",
                    "message": "blob upload invalid",
                    "detail": {
                        "reason": "Invalid Content-type (text/plain), "
                        "expected ['application/octet-stream']"
                    },
                }
            ]
        },
    ),
]


@pytest.mark.parametrize(("method", "path", "options", "status", "body"), CASES)
def test_spec_violation_answers(
    client: httpx.Client,
    method: str,
    path: str,
    options: dict[str, Any],
    status: int,
    body: dict[str, Any],
) -> None:
    response = client.request(method, path, **options)
    assert (response.status_code, response.json()) == (status, body)
    assert response.headers["content-type"] == "application/json"


def test_manifest_push_with_a_generic_content_type_is_manifest_invalid(
    client: httpx.Client,
) -> None:
    response = client.put(
        "/v2/v/b/manifests/v1", headers={"Content-Type": "text/plain"}, content=b"{}"
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "MANIFEST_INVALID"
    assert error["detail"]["reason"].startswith("Invalid Content-type (text/plain), expected [")


@pytest.mark.parametrize("path", ["/v2/_catalog", "/v2/v/a/tags/list"])
@pytest.mark.parametrize("n", ["+5", " 5", "5 ", "5_0", "\u0665", "-0", "0x5", "5.0", ""])
def test_n_must_be_plain_decimal_digits(client: httpx.Client, path: str, n: str) -> None:
    """``n`` is an integer written in ASCII digits, nothing else: int() would take a sign,
    spaces, underscores and other scripts' digits."""
    response = client.get(path, params={"n": n})
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "UNSUPPORTED"
    assert error["detail"]["parameter"] == "n"


@pytest.mark.parametrize("n", ["5", "05", "0"])
def test_n_in_digits_is_accepted(client: httpx.Client, n: str) -> None:
    assert client.get("/v2/_catalog", params={"n": n}).status_code == 200
