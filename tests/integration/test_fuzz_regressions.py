"""Regressions for bugs found by the schemathesis fuzzer (tests/fuzz)."""

from __future__ import annotations

import httpx
import pytest

from tests.oci import error_codes, push_blob


@pytest.mark.parametrize(
    ("range_header", "reason"),
    [
        ("bytes=abc", "range must be requested"),
        ("bytes=9-2", "start must be less than end"),
        ("pages=1-2", "Only support bytes range"),
        ("nonsense", "Malformed range header"),
    ],
)
def test_malformed_range_is_an_oci_error(
    client: httpx.Client, repo: str, range_header: str, reason: str
) -> None:
    # Was: 400 text/plain from starlette's FileResponse, not the spec's error body.
    digest = push_blob(client, repo, bytes(range(256)))
    response = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": range_header})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert error_codes(response) == ["UNSUPPORTED"]
    assert reason in response.json()["errors"][0]["detail"]["reason"]


def test_unsatisfiable_range_is_an_oci_error(client: httpx.Client, repo: str) -> None:
    # Was: 416 text/plain with an empty body.
    digest = push_blob(client, repo, bytes(range(256)))
    response = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=256-"})
    assert response.status_code == 416
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Range"] == "bytes */256"
    assert error_codes(response) == ["UNSUPPORTED"]


def test_ranges_still_served(client: httpx.Client, repo: str) -> None:
    data = bytes(range(256))
    digest = push_blob(client, repo, data)
    url = f"/v2/{repo}/blobs/{digest}"
    suffix = client.get(url, headers={"Range": "bytes=-10"})
    assert suffix.status_code == 206
    assert suffix.content == data[-10:]
    several = client.get(url, headers={"Range": "bytes=0-1,5-9"})
    assert several.status_code == 206
    assert several.headers["Content-Type"].startswith("multipart/byteranges")
    # If-Range that does not match: the whole blob, as starlette decides.
    whole = client.get(url, headers={"Range": "bytes=abc", "If-Range": '"other"'})
    assert whole.status_code == 200
    assert whole.content == data
