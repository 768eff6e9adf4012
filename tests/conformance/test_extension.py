"""``ocireg conformance --extension``: an extension's API checked against a running registry.

The in-tree example extension (``tests/extensions/example``) conforms; broken variants of its
fragment and definition document fail, each with a message that says what is wrong.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ocireg.cli import main
from tests.liveserver import LiveServer

EXAMPLE = Path(__file__).resolve().parent.parent / "extensions" / "example"
FRAGMENT = EXAMPLE / "ext-example-quota.yaml"


def _run(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str]:
    status = main(["conformance", "--url", url, "--examples", "5", *args])
    return status, capsys.readouterr().out


def _copy(tmp_path: Path) -> tuple[Path, dict[str, object], Path]:
    fragment, definition = tmp_path / FRAGMENT.name, tmp_path / FRAGMENT.with_suffix(".md").name
    shutil.copy(FRAGMENT.with_suffix(".md"), definition)
    return fragment, yaml.safe_load(FRAGMENT.read_text()), definition


def test_the_example_extension_conforms(
    extended: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = _run(capsys, extended.url, "--extension", str(FRAGMENT))
    assert status == 0, out
    for check in ("names", "definition", "discovery", "undeclared", "operations"):
        assert f"PASS {check}:" in out
    assert "extension _example: conforms" in out


def test_an_answer_the_fragment_does_not_declare_fails(
    extended: LiveServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fragment, document, _ = _copy(tmp_path)
    operation = document["paths"]["/v2/{name}/_example/ext/quota"]["get"]  # type: ignore[index]
    del operation["responses"]["404"]  # the registry answers 404 for unknown repositories
    fragment.write_text(yaml.safe_dump(document))
    status, out = _run(capsys, extended.url, "--extension", str(fragment))
    assert status == 1
    assert "FAIL operations: GET /v2/{name}/_example/ext/quota:" in out
    assert "404" in out


def test_a_definition_document_missing_its_parts_fails(
    extended: LiveServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fragment, document, definition = _copy(tmp_path)
    fragment.write_text(yaml.safe_dump(document))
    text = definition.read_text().replace("## Error Codes", "## Errors")
    definition.write_text(text.replace("#### Module: `quota`", "#### Module"))
    status, out = _run(capsys, extended.url, "--extension", str(fragment))
    assert status == 1
    assert "FAIL definition: no '## Error Codes' section" in out
    assert "FAIL definition: Reference Explanation has no '#### Module: `quota`'" in out


def test_names_outside_the_rules_and_an_unlisted_namespace_fail(
    extended: LiveServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fragment, document, definition = _copy(tmp_path)
    paths = document["paths"]  # type: ignore[index]
    paths["/v2/_example/Quota"] = paths["/v2/{name}/_example/ext/quota"]  # type: ignore[index]
    fragment.write_text(yaml.safe_dump(document))
    status, out = _run(capsys, extended.url, "--extension", str(fragment))
    assert status == 1
    assert "FAIL names: /v2/_example/Quota: not /v2/_<ns>/<component>/<module>" in out
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(fragment.read_text().replace("_example", "_nowhere"))
    shutil.copy(definition, elsewhere.with_suffix(".md"))
    status, out = _run(capsys, extended.url, "--extension", str(elsewhere))
    assert status == 1
    assert "FAIL discovery: GET /v2/_oci/ext/discover does not list _nowhere" in out
