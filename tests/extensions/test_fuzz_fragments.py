"""schemathesis against each extension's OpenAPI fragment, on a live registry that enables it.

Every response must be no 5xx and exactly what the fragment declares (status, content type,
headers, body schema); the fragments are the contract the extensions are routed by.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from typing import Any

import httpx
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
from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, put_manifest

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


@_schema("trust").parametrize()
@SETTINGS
def test_trust_fragment(case: Case, extended: LiveServer) -> None:
    _call(case, extended)


@_schema("clientreport").parametrize()
@SETTINGS
def test_clientreport_fragment(case: Case, extended: LiveServer) -> None:
    _call(case, extended)


@_schema("quota").parametrize()
@SETTINGS
def test_example_fragment(case: Case, extended: LiveServer) -> None:
    _call(case, extended)


@pytest.fixture(scope="module")
def sbom_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``sbom`` needs the cve extra, which the ``extended`` registry does without; one image
    is there for the fuzzing to find."""
    with live_server(tmp_path_factory.mktemp("sbom"), {"extensions": {"sbom": {}}}) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            layer = _tar_gz({"etc/os-release": b'ID=debian\nVERSION_ID="12"\n'})
            put_manifest(client, "a", "a", image_manifest(client, "a", [layer]))
        yield live


def _tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, data in files.items():
            member = tarfile.TarInfo(path)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return raw.getvalue()


@_schema("sbom").parametrize()
@SETTINGS
def test_sbom_fragment(case: Case, sbom_registry: LiveServer) -> None:
    _call(case, sbom_registry)


def test_every_builtin_http_extension_is_fuzzed() -> None:
    fuzzed = {"clientreport", "mgmt", "sbom", "search", "specs", "trust", "userprefs"}
    http = {name for name, extension in available().items() if extension.specs}
    assert http == fuzzed, "add a fuzz test for each new HTTP extension"


pytestmark = pytest.mark.slow
