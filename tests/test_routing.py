"""connexion's check of a spec against the OpenAPI schema, done once per content."""

from __future__ import annotations

import copy
from pathlib import Path
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


@pytest.fixture
def checked(routing: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every spec the schema check runs on (it still runs), in a process that has checked
    nothing yet."""
    seen: list[dict[str, Any]] = []
    original = routing._check_against_schema

    def counting(spec: dict[str, Any]) -> None:
        seen.append(spec)
        original(spec)

    monkeypatch.setattr(routing, "_check_against_schema", counting)
    monkeypatch.setattr(routing, "_VALIDATED", set())
    return seen


def test_a_spec_is_checked_against_the_schema_once_per_content(
    routing: ModuleType, checked: list[dict[str, Any]]
) -> None:
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


def test_a_spec_marked_valid_on_an_earlier_start_is_not_checked_again(
    routing: ModuleType,
    checked: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(routing, "_remembered_in", ())
    marks = tmp_path / "spec-checked"
    routing.remember_checks_in(marks)
    spec = core_spec()
    routing.check_spec(spec)
    assert len(checked) == 1
    (mark,) = marks.iterdir()
    assert len(mark.name) == 64  # a sha256, nothing half-written next to it
    monkeypatch.setattr(routing, "_VALIDATED", set())  # as a new process on the same root
    routing.check_spec(copy.deepcopy(spec))
    assert len(checked) == 1
    spec["info"]["title"] = "another content"
    routing.check_spec(spec)
    assert len(checked) == 2
    assert len(list(marks.iterdir())) == 2


def test_an_invalid_spec_leaves_no_mark(
    routing: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from connexion.exceptions import InvalidSpecification

    monkeypatch.setattr(routing, "_VALIDATED", set())
    monkeypatch.setattr(routing, "_remembered_in", ())
    marks = tmp_path / "spec-checked"
    routing.remember_checks_in(marks)
    spec = core_spec()
    spec["paths"]["/v2/"]["get"]["responses"] = "not a mapping"
    for _ in range(2):
        with pytest.raises(InvalidSpecification):
            routing.check_spec(spec)
    assert not marks.exists() or not any(marks.iterdir())


def test_a_root_that_cannot_take_the_mark_still_checks(
    routing: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(routing, "_VALIDATED", set())
    monkeypatch.setattr(routing, "_remembered_in", ())
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    routing.remember_checks_in(blocked / "spec-checked")  # under a file: mkdir fails
    routing.check_spec(core_spec())  # checked and valid, only not remembered
    assert blocked.read_text() == ""


def test_a_mark_in_one_directory_is_enough_and_is_copied_to_the_others(
    routing: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A new root on a machine that has checked the spec before: the user's cache has the
    mark, the root gets it without a check."""
    checked: list[dict[str, Any]] = []
    monkeypatch.setattr(routing, "_check_against_schema", checked.append)
    monkeypatch.setattr(routing, "_VALIDATED", set())
    monkeypatch.setattr(routing, "_remembered_in", ())
    cache, root = tmp_path / "cache", tmp_path / "root"
    routing.remember_checks_in(cache)
    routing.check_spec(core_spec())
    assert len(checked) == 1
    monkeypatch.setattr(routing, "_VALIDATED", set())  # a new process, on a new root
    routing.remember_checks_in(root, cache)
    routing.check_spec(core_spec())
    assert len(checked) == 1
    assert [each.name for each in root.iterdir()] == [each.name for each in cache.iterdir()]
