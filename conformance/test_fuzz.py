"""Fuzz: schemathesis against the published ``spec/openapi.yaml`` (opt-in: ``--workflows fuzz``).

Two runs against the registry under test:

* stateless: every operation, positive and negative data, through schemathesis's examples,
  coverage and fuzzing phases;
* stateful: chains of calls through the spec's OpenAPI ``links`` (start an upload, then PATCH,
  PUT ?digest, GET status or DELETE on its session; push a manifest, then GET, HEAD or DELETE it).

Every response must be no 5xx and, when it is JSON, a 4xx body must be an OCI error body. With
``--schema strict`` every status code, header, content type and body must also be as the spec
declares them (the schema is ocireg's, so use ``strict`` for ocireg and ``warn`` elsewhere).

Random names and digests almost never exist, so the read operations would only ever see 404s.
A fixed repository (``<namespace>-fuzz``: a blob, a tagged manifest and a referrer) is pushed
first and schemathesis dictionaries make half of the generated names, digests and references
point at it, so 200/206/416 answers (and ``Range`` handling) get fuzzed too.

The run stays inside its namespace: every generated repository name is put under
``<namespace>-fuzz/`` (an invalid name stays invalid there), and everything the registry
accepted (manifests, blobs, open uploads, API keys) is deleted at the end, the seeded content
too. Repositories themselves cannot be deleted through the API; where they stay, they are
under ``<namespace>-fuzz``.

The budget is fixed so CI stays deterministic and quick: a fixed seed, derandomized Hypothesis,
no example database, ``OCI_FUZZ_EXAMPLES`` (default 50) per operation in the fuzzing phase and
as many stateful chains of at most ``STATEFUL_STEPS`` calls. Auth: anonymous or Basic.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote

import pytest
import yaml

try:
    import hypothesis
    import schemathesis
    from schemathesis import Case, CheckContext, Response
    from schemathesis.checks import CheckFunction, not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )
except ImportError:  # pragma: no cover - the conformance extra installs it
    pytest.skip(
        "schemathesis is not installed: pip install 'ocireg[conformance]'", allow_module_level=True
    )

from ocireg.conformance.cleanup import Pushed
from ocireg.conformance.client import SchemaWatch, make_client
from ocireg.conformance.content import EMPTY_JSON, OCI_LAYER, OCI_MANIFEST, Blob, Manifest
from ocireg.conformance.ops import Registry
from ocireg.conformance.settings import Settings
from ocireg.errors import ErrorCode

pytestmark = pytest.mark.workflow("fuzz")
SETTINGS = Settings.from_env()

SEED = 20_250_611
MAX_EXAMPLES = int(os.environ.get("OCI_FUZZ_EXAMPLES") or 50)
STATEFUL_SCENARIOS = MAX_EXAMPLES
STATEFUL_STEPS = 10
SEEDED_PROBABILITY = 0.5

OCI_CODES = frozenset(code.name for code in ErrorCode)

# The seeded content: fixed bytes, so every digest is known when the config is built.
SEED_REPO = f"{SETTINGS.namespace}-fuzz"
SEED_TAG = "seeded"
SEED_LAYER = Blob(bytes(range(256)) * 4, OCI_LAYER)
SEED_CONFIG = Blob(b"{}", EMPTY_JSON)


def _manifest(**extra: Any) -> Manifest:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": SEED_CONFIG.descriptor(),
        "layers": [SEED_LAYER.descriptor()],
        **extra,
    }
    body = json.dumps(document, separators=(",", ":")).encode()
    return Manifest(body, OCI_MANIFEST, (SEED_CONFIG, SEED_LAYER))


SEED_MANIFEST = _manifest()
SEED_REFERRER = _manifest(
    artifactType="application/vnd.ocireg.fuzz", subject=SEED_MANIFEST.descriptor()
)
SEED_DIGESTS = [SEED_LAYER.digest, SEED_CONFIG.digest, SEED_MANIFEST.digest]
SEED_REFERENCES = [SEED_TAG, SEED_MANIFEST.digest, SEED_REFERRER.digest]
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
    if not content_type.startswith("application/json"):
        return None  # the spec lets a 4xx carry any body; only a JSON one must be OCI errors
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


CHECKS: list[CheckFunction] = [not_a_server_error, oci_error_body]
if SETTINGS.schema == "strict":
    CHECKS += [
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
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
    """The published spec, with an example repository name that has a `/` in it.

    Schemathesis drops generated path values containing `/` (sent as `%2F`) unless the
    parameter's examples show a `/` is intended; without one no name would ever have two
    components, the common case for a registry. The example lives only in the fuzzer's copy.
    """
    text = resources.files("ocireg.spec").joinpath("openapi.yaml").read_text()
    spec: dict[str, Any] = yaml.safe_load(text)
    spec["components"]["parameters"]["name"]["example"] = SEED_REPO
    return spec


schema = schemathesis.openapi.from_dict(_load_spec(), config=CONFIG)
PUSHED = Pushed()


def confined(name: str) -> str:
    """A generated repository name (percent-encoded, as schemathesis sends it) moved under
    ``SEED_REPO``, so that no write lands outside the run's namespace."""
    plain = unquote(name)
    if plain == SEED_REPO or plain.startswith(f"{SEED_REPO}/"):
        return name
    return quote(f"{SEED_REPO}/", safe="") + name


def confine(case: Case) -> None:
    """Put ``case``'s repository under ``SEED_REPO`` before it is sent. Done on the case at
    call time rather than by a generation hook, which not every phase (coverage) applies; the
    stateful links then carry the confined name on."""
    if case.path_parameters and "name" in case.path_parameters:
        case.path_parameters["name"] = confined(str(case.path_parameters["name"]))


def _request_params(case: Case) -> dict[str, str]:
    params = {key: unquote(str(value)) for key, value in (case.path_parameters or {}).items()}
    for key, value in (case.query or {}).items():
        first = value[0] if isinstance(value, list) and value else value
        params.setdefault(key, str(first))
    return params


@schema.hook
def after_call(context: Any, case: Case, response: Response) -> None:
    headers = {key.lower(): values[0] for key, values in response.headers.items() if values}
    PUSHED.note(
        case.method.upper(), case.path, response.status_code, headers, _request_params(case),
        response.content or b"",
    )  # fmt: skip


def _call_kwargs() -> dict[str, Any]:
    kwargs: dict[str, Any] = {"base_url": SETTINGS.root_url, "timeout": 30}
    if SETTINGS.username:
        kwargs["auth"] = (SETTINGS.username, SETTINGS.password or "")
    if not SETTINGS.tls_verify:
        kwargs["verify"] = False
    return kwargs


@pytest.fixture(scope="module")
def pushed(settings: Settings) -> Iterator[Pushed]:
    """What the run wrote; deleted when the workflow is done."""
    yield PUSHED
    with make_client(settings, SchemaWatch("off")) as client:
        PUSHED.take_away(client)


@pytest.fixture(scope="module")
def seeded(registry: Registry, pushed: Pushed) -> None:
    """Push ``SEED_REPO``'s content (idempotent: the same bytes every run)."""
    for blob in (SEED_CONFIG, SEED_LAYER):
        pushed.note_blob(SEED_REPO, blob.digest)
    for manifest in (SEED_MANIFEST, SEED_REFERRER):
        pushed.note_manifest(SEED_REPO, manifest.digest)
    registry.push_manifest(SEED_REPO, SEED_TAG, SEED_MANIFEST)
    registry.push_manifest(SEED_REPO, SEED_REFERRER.digest, SEED_REFERRER)


@schema.parametrize()
def test_stateless(case: Case, seeded: None) -> None:
    confine(case)
    case.call_and_validate(checks=CHECKS, **_call_kwargs())


STATEFUL_SETTINGS = hypothesis.settings(
    max_examples=STATEFUL_SCENARIOS,
    stateful_step_count=STATEFUL_STEPS,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)


def test_stateful(seeded: None) -> None:
    found: list[BaseException] = []

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Case) -> None:
            super().before_call(case)
            confine(case)

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return _call_kwargs()

        def validate_response(
            self,
            response: Response,
            case: Case,
            additional_checks: list[CheckFunction] | None = None,
            **kwargs: Any,
        ) -> None:
            try:
                case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)
            except Exception as failure:
                found.append(failure)
                raise

    try:
        Workflow.run(settings=STATEFUL_SETTINGS)
    except hypothesis.errors.FlakyStrategyDefinition:
        # The registry's state moves as chains run (a blob one chain pushed turns a later
        # mount's 202 into a 201), so a replayed prefix may offer other links and Hypothesis
        # stops exploring. That ends the run early; it says nothing about the registry, unless
        # a check had already failed, which is then the finding.
        if found:
            raise found[0] from None
