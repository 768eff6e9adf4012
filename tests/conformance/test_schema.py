"""Schema departures: real ones are reported; values the spec leaves opaque are not."""

from __future__ import annotations

import httpx
import pytest

from ocireg.conformance.checks import ConformanceFailure
from ocireg.conformance.client import SchemaWatch
from ocireg.conformance.schema import deviations

UPLOADS = "http://registry.test/v2/team/app/blobs/uploads/"
DISTRIBUTION_SESSION = "3fc96bb0-d83c-41b6-9d26-ab77cdbacdc7"  # distribution's form: a UUID


def _upload_started(headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(202, headers=headers, request=httpx.Request("POST", UPLOADS))


def test_another_registrys_session_ids_are_opaque() -> None:
    response = _upload_started({
        "Location": f"/v2/team/app/blobs/uploads/{DISTRIBUTION_SESSION}?_state=abc",
        "Docker-Upload-UUID": DISTRIBUTION_SESSION,
        "Range": "0-0",
        "Content-Length": "0",
    })  # fmt: skip
    found = deviations(response)
    assert found and all(deviation.opaque for deviation in found), found
    assert "header Docker-Upload-UUID" in found[0].problem


def test_a_range_header_in_another_form_is_a_real_departure() -> None:
    """The spec does set the form of ``Range`` (``0-<end>``): that one is reported."""
    found = deviations(_upload_started({"Location": "/x", "Range": "bytes=0-9"}))
    assert [deviation.opaque for deviation in found] == [False], found
    assert "header Range" in found[0].problem


@pytest.mark.parametrize("mode", ["warn", "strict"])
def test_the_watch_counts_opaque_departures_and_never_fails_on_them(mode: str) -> None:
    watch = SchemaWatch(mode)
    watch(_upload_started({
        "Location": f"/v2/team/app/blobs/uploads/{DISTRIBUTION_SESSION}",
        "Docker-Upload-UUID": DISTRIBUTION_SESSION,
    }))  # fmt: skip
    assert watch.found == [] and watch.opaque_left_out == 1


def test_the_watch_fails_a_real_departure_in_strict_mode() -> None:
    with pytest.raises(ConformanceFailure, match=r"departs from spec/openapi\.yaml"):
        SchemaWatch("strict")(_upload_started({"Location": "/x", "Range": "bytes=0-9"}))
