"""Merging extension fragments into the routed spec, and the rules a fragment must follow."""

from __future__ import annotations

import pytest

from ocireg.extensions.declaration import Extension
from ocireg.extensions.specs import SpecError, core_spec, endpoints, merge


def acme(*specs: str, name: str = "acme") -> Extension:
    return Extension(
        name=name,
        description="d",
        setup="m:f",
        namespace="_acme",
        specs=specs,
        definition="ext-acme.md",
        spec_package="tests.extensions.fragments",
    )


def test_fragments_add_paths_and_components_to_a_copy_of_the_core() -> None:
    core = core_spec()
    merged = merge(core, [acme("good.yaml")])
    assert "/v2/_acme/ext/thing" in merged["paths"]
    assert "/v2/_acme/ext/thing" not in core["paths"]
    assert "/v2/{name}/manifests/{reference}" in merged["paths"]
    assert merged["components"]["schemas"]["AcmeThing"] == {"type": "object"}
    assert "AcmeThing" not in core["components"]["schemas"]
    assert endpoints(acme("good.yaml")) == ["/v2/_acme/ext/thing"]


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ("outside.yaml", r"path /v2/_other/ext/thing is not under /v2/_acme/"),
        ("no-operation-id.yaml", r"get /v2/\{name\}/_acme/ext/thing has no operationId"),
        ("swagger2.yaml", "is not an OpenAPI 3 document"),
        ("missing.yaml", "cannot load missing.yaml"),
    ],
)
def test_fragment_rules(fragment: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        merge(core_spec(), [acme(fragment)])


def test_a_fragment_cannot_redeclare_a_path_or_change_a_component() -> None:
    with pytest.raises(SpecError, match="path /v2/_acme/ext/thing is already declared"):
        merge(core_spec(), [acme("good.yaml"), acme("good.yaml", name="again")])
    with pytest.raises(SpecError, match=r"components.schemas.ErrorResponse differs"):
        merge(core_spec(), [acme("clash.yaml")])


def test_each_caller_gets_its_own_copy_of_a_parsed_spec() -> None:
    first = core_spec()
    first["paths"].clear()
    assert "/v2/{name}/manifests/{reference}" in core_spec()["paths"]


def test_the_fast_parser_reads_every_shipped_spec_as_the_reference_parser_does() -> None:
    from importlib import resources

    import yaml

    from ocireg.extensions.specs import parse_yaml

    spec = resources.files("ocireg.spec")
    documents = [spec.joinpath("openapi.yaml"), *spec.joinpath("ext").iterdir()]
    documents = [each for each in documents if each.name.endswith(".yaml")]
    assert len(documents) > 1
    for document in documents:
        text = document.read_text()
        assert parse_yaml(text) == yaml.safe_load(text), document.name


def test_the_shipped_specs_parsed_ahead_are_current() -> None:
    from importlib import resources

    from ocireg.extensions.specs import PARSED, parsed_ahead_text

    shipped = resources.files("ocireg.spec").joinpath(PARSED).read_text()
    assert shipped == parsed_ahead_text(), "run: python -m ocireg.extensions.specs"


def test_an_edited_spec_is_parsed_again_not_answered_from_the_shipped_parse() -> None:
    from importlib import resources

    import yaml

    from ocireg.extensions.specs import CORE_SPEC, parse_yaml

    text = resources.files("ocireg.spec").joinpath(CORE_SPEC).read_text()
    edited = text.replace("\ninfo:\n", "\ninfo:\n  x-edited: true\n", 1)
    assert edited != text
    assert parse_yaml(edited) == yaml.safe_load(edited)
    assert parse_yaml(edited)["info"]["x-edited"] is True
    assert "x-edited" not in parse_yaml(text)["info"]
