"""Every example config in docs/examples loads, and agrees with the exported JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from ocireg.config import config_json_schema, default_config, load_config

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "docs" / "examples").iterdir())


def read(path: Path) -> object:
    return (
        json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    )


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_loads(path: Path) -> None:
    load_config(path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_accepts_docker_manifests(path: Path) -> None:
    """A user copies an example and pushes with docker: as the embedded default, it works."""
    assert "docker2s2" in load_config(path).http.compat


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_matches_the_schema(path: Path) -> None:
    jsonschema.validate(read(path), config_json_schema())


def test_embedded_default_example_is_the_embedded_default() -> None:
    example = load_config(EXAMPLES[0].parent / "embedded-default.yaml")
    assert example == default_config()


def test_schema_rejects_unknown_keys() -> None:
    bad = {"storage": {"rootDirectory": "/d", "nope": 1}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, config_json_schema())
