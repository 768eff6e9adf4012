"""schemathesis against each extension's OpenAPI fragment, on a live registry that enables it.

Every response must be no 5xx and exactly what the fragment declares (status, content type,
headers, body schema); the fragments are the contract the extensions are routed by.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ocireg.extensions.loading import available
from ocireg.extensions.specs import load_fragment
from tests.extensions.example import EXTENSION as QUOTA
from tests.liveserver import LiveServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20_251_125,
        "generation": {
            "mode": "all",
            "max-examples": 25,
            "deterministic": True,
            "database": "none",
        },
    }
)


def _schema(name: str) -> Any:
    extension = available([QUOTA])[name]
    (fragment,) = extension.specs
    document = load_fragment(extension, fragment)
    return schemathesis.openapi.from_dict(document, config=CONFIG)


def _call(case: Case, server: LiveServer) -> None:
    case.call_and_validate(checks=CHECKS, base_url=server.url, timeout=30)


SETTINGS = hypothesis.settings(suppress_health_check=list(hypothesis.HealthCheck), deadline=None)


@_schema("mgmt").parametrize()
@SETTINGS
def test_mgmt_fragment(case: Case, extended: LiveServer) -> None:
    _call(case, extended)


@_schema("specs").parametrize()
@SETTINGS
def test_specs_fragment(case: Case, extended: LiveServer) -> None:
    _call(case, extended)


@_schema("search").parametrize()
@SETTINGS
def test_search_fragment(case: Case, extended: LiveServer) -> None:
    _call(case, extended)


@_schema("userprefs").parametrize()
@SETTINGS
def test_userprefs_fragment(case: Case, extended: LiveServer) -> None:
    _call(case, extended)


@_schema("clientreport").parametrize()
@SETTINGS
def test_clientreport_fragment(case: Case, extended: LiveServer) -> None:
    _call(case, extended)


@_schema("quota").parametrize()
@SETTINGS
def test_example_fragment(case: Case, extended: LiveServer) -> None:
    _call(case, extended)


def test_every_builtin_http_extension_is_fuzzed() -> None:
    fuzzed = {"mgmt", "search", "specs", "userprefs", "clientreport"}
    http = {name for name, extension in available().items() if extension.specs}
    assert http == fuzzed, "add a fuzz test for each new HTTP extension"


pytestmark = pytest.mark.slow
