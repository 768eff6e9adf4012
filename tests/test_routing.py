"""connexion's check of a spec against the OpenAPI schema, done once per content."""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import pytest

from ocireg.extensions.specs import core_spec

# importing connexion warns (its jsonschema RefResolver, starlette's test client); the live
# servers import it in their own process, these tests in-process
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient."),
]


@pytest.fixture
def routing() -> ModuleType:
    from ocireg import routing

    return routing


def test_a_spec_is_checked_against_the_schema_once_per_content(
    routing: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[dict[str, Any]] = []
    original = routing._check_against_schema

    def counting(spec: dict[str, Any]) -> None:
        checked.append(spec)
        original(spec)

    monkeypatch.setattr(routing, "_check_against_schema", counting)
    monkeypatch.setattr(routing, "_VALIDATED", set())
    spec = core_spec()
    routing.check_spec(spec)
    routing.check_spec(copy.deepcopy(spec))
    assert len(checked) == 1
    spec["info"]["title"] = "another content"
    routing.check_spec(spec)
    assert len(checked) == 2


def test_an_invalid_spec_is_refused_every_time(routing: ModuleType) -> None:
    from connexion.exceptions import InvalidSpecification

    spec = core_spec()
    spec["paths"]["/v2/"]["get"]["responses"] = "not a mapping"
    for _ in range(2):
        with pytest.raises(InvalidSpecification):
            routing.check_spec(spec)
