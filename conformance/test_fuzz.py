"""Fuzz the live registry with schemathesis, driven by ``spec/openapi.yaml``.

Two runs against the session's ``server`` (real sockets, one server per xdist worker):

* stateless: every operation, positive and negative data, through schemathesis's examples,
  coverage and fuzzing phases;
* stateful: chains of calls through the spec's OpenAPI ``links`` (start an upload, then PATCH,
  PUT ?digest, GET status or DELETE on its session; push a manifest, then GET, HEAD or DELETE it).

Every response must pass the same checks: never a 5xx, status codes, headers, content types and
bodies as the spec declares them, and every 4xx body an OCI error body with a known code.

Random names and digests almost never exist, so the read operations would only ever see 404s.
A fixed repository (``SEED_REPO``: a blob, a tagged manifest and a referrer) is pushed first and
schemathesis dictionaries make half of the generated names, digests and references point at it,
so 200/206/416 answers (and ``Range`` handling) get fuzzed too.

The budget is fixed so CI stays deterministic and quick: a fixed seed, derandomized Hypothesis,
no example database, ``MAX_EXAMPLES`` per operation in the fuzzing phase (the coverage phase is
deterministic and sends what the schema implies, ~1,700 requests in all), and
``STATEFUL_SCENARIOS`` chains of at most ``STATEFUL_STEPS`` calls: about 40 s under
``pytest -n 2`` on two cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import yaml
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ocireg.errors import ErrorCode
from tests.liveserver import LiveServer
from tests.oci import EMPTY, OCI_LAYER, OCI_MANIFEST, canonical, descriptor, push_blob, sha256

SPEC = Path(__file__).resolve().parents[2] / "spec" / "openapi.yaml"
SEED = 20_250_611
MAX_EXAMPLES = 50
STATEFUL_SCENARIOS = 50
STATEFUL_STEPS = 10
SEEDED_PROBABILITY = 0.5

OCI_CODES = frozenset(code.name for code in ErrorCode)

# The seeded content: fixed bytes, so every digest is known when the config is built.
SEED_REPO = "fuzz/seeded"
SEED_TAG = "seeded"
SEED_LAYER = bytes(range(256)) * 4
SEED_MANIFEST = canonical(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": EMPTY,
        "layers": [descriptor(OCI_LAYER, SEED_LAYER)],
    }
)
SEED_REFERRER = canonical(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.ocireg.fuzz",
        "config": EMPTY,
        "layers": [descriptor(OCI_LAYER, SEED_LAYER)],
        "subject": descriptor(OCI_MANIFEST, SEED_MANIFEST),
    }
)
SEED_DIGESTS = [sha256(SEED_LAYER), EMPTY["digest"], sha256(SEED_MANIFEST)]
SEED_REFERENCES = [SEED_TAG, sha256(SEED_MANIFEST), sha256(SEED_REFERRER)]
# Ranges against the 1 KiB seeded layer: inside, suffix, open, past the end, reversed,
# several at once, and malformed.
SEED_RANGES = [
    "bytes=0-99",
    "bytes=-10",
    "bytes=1000-",
    "bytes=5000-6000",
    "bytes=9-2",
    "bytes=0-1,5-9",
    "bytes=abc",
    "pages=1-2",
]


def oci_error_body(_ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx answer with a body is ``{"errors":[{"code": <OCI code>, "message": ...}]}``."""
    if not 400 <= response.status_code < 500 or not response.content:
        return None
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"{where}: content type {content_type!r}"
    try:
        body = json.loads(response.content)
    except ValueError as error:
        raise AssertionError(f"{where}: body is not JSON: {response.content[:200]!r}") from error
    assert isinstance(body, dict), f"{where}: error body is not an object: {body!r}"
    errors = body.get("errors")
    assert isinstance(errors, list), f"{where}: no `errors` list: {body!r}"
    assert errors, f"{where}: empty `errors` list"
    for entry in errors:
        assert isinstance(entry, dict), f"{where}: error entry is not an object: {entry!r}"
        assert entry.get("code") in OCI_CODES, f"{where}: unknown error code: {entry!r}"
        assert isinstance(entry.get("message"), str), f"{where}: error without a message: {entry!r}"
    return True


CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    oci_error_body,
]


def _seeded(probability: float = SEEDED_PROBABILITY, **parameters: str) -> dict[str, Any]:
    return {
        key: {"dictionary": dictionary, "probability": probability}
        for key, dictionary in parameters.items()
    }


# Read operations draw half their names/digests/references from the seeded repository. The
# operations that delete are left alone so the seeded content survives the whole run.
SEEDED_OPERATIONS = [
    {
        "include-name": ["GET /v2/{name}/blobs/{digest}"],
        "parameters": _seeded(
            0.7, **{"path.name": "repos", "path.digest": "digests", "header.Range": "ranges"}
        ),
    },
    {
        "include-name": ["HEAD /v2/{name}/blobs/{digest}"],
        "parameters": _seeded(**{"path.name": "repos", "path.digest": "digests"}),
    },
    {
        "include-name": [
            "GET /v2/{name}/manifests/{reference}",
            "HEAD /v2/{name}/manifests/{reference}",
        ],
        "parameters": _seeded(**{"path.name": "repos", "path.reference": "references"}),
    },
    {
        "include-name": ["GET /v2/{name}/referrers/{digest}"],
        "parameters": _seeded(**{"path.name": "repos", "path.digest": "digests"}),
    },
    {
        "include-name": ["GET /v2/{name}/tags/list"],
        "parameters": _seeded(**{"path.name": "repos"}),
    },
    {
        "include-name": ["POST /v2/{name}/blobs/uploads/"],
        "parameters": _seeded(**{"query.mount": "digests", "query.from": "repos"}),
    },
]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",  # positive and negative data
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "dictionaries": {
            "repos": {"values": [SEED_REPO]},
            "digests": {"values": SEED_DIGESTS},
            "references": {"values": SEED_REFERENCES},
            "ranges": {"values": SEED_RANGES},
        },
        "operations": SEEDED_OPERATIONS,
        "phases": {
            # Chains need requests the server accepts; negative data is fuzzed statelessly.
            "stateful": {"max-steps": STATEFUL_STEPS, "generation": {"mode": "positive"}},
        },
    }
)


def _load_spec() -> dict[str, Any]:
    """The spec, with an example repository name that has a `/` in it.

    Schemathesis drops generated path values containing `/` (sent as `%2F`) unless the
    parameter's examples show a `/` is intended; without one no name would ever have two
    components, the common case for a registry. The example lives only in the fuzzer's copy.
    """
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    spec["components"]["parameters"]["name"]["example"] = SEED_REPO
    return spec


schema = schemathesis.openapi.from_dict(_load_spec(), config=CONFIG)


@pytest.fixture(scope="module")
def seeded(server: LiveServer) -> LiveServer:
    """Push ``SEED_REPO``'s content (idempotent: every xdist worker has its own server)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        push_blob(client, SEED_REPO, SEED_LAYER)
        push_blob(client, SEED_REPO, b"{}")
        for reference, manifest in (
            (SEED_TAG, SEED_MANIFEST),
            (sha256(SEED_REFERRER), SEED_REFERRER),
        ):
            response = client.put(
                f"/v2/{SEED_REPO}/manifests/{reference}",
                content=manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert response.status_code == 201, response.text
    return server


@schema.parametrize()
def test_stateless(case: Case, seeded: LiveServer) -> None:
    case.call_and_validate(base_url=seeded.url, checks=CHECKS, timeout=30)


STATEFUL_SETTINGS = hypothesis.settings(
    max_examples=STATEFUL_SCENARIOS,
    stateful_step_count=STATEFUL_STEPS,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)


@pytest.mark.slow
def test_stateful(seeded: LiveServer) -> None:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": seeded.url, "timeout": 30}

        def validate_response(
            self,
            response: Response,
            case: Case,
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(settings=STATEFUL_SETTINGS)
