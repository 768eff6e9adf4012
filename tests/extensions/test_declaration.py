"""An extension declaration refuses what the OCI extension rules forbid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocireg.config import load_config
from ocireg.configcheck import ConfigError
from ocireg.extensions.declaration import Extension


def declare(**fields: object) -> Extension:
    values: dict[str, object] = {"name": "x", "description": "d", "setup": "m:f"}
    values.update(fields)
    return Extension(**values)  # type: ignore[arg-type]


def test_an_http_extension_needs_a_valid_namespace_and_a_definition() -> None:
    declare(namespace="_acme", definition="ext-acme-x.md", specs=("ext-acme-x.yaml",))
    with pytest.raises(ValueError, match="must match"):
        declare(namespace="acme", definition="d.md")
    with pytest.raises(ValueError, match="must match"):
        declare(namespace="_Acme", definition="d.md")
    with pytest.raises(ValueError, match="needs a definition document"):
        declare(namespace="_acme")


@pytest.mark.parametrize("namespace", ["_oci", "_catalog"])
def test_reserved_namespaces_are_refused(namespace: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        declare(namespace=namespace, definition="d.md")


def test_fragments_need_a_namespace_and_setup_a_function() -> None:
    with pytest.raises(ValueError, match="no namespace"):
        declare(specs=("f.yaml",))
    with pytest.raises(ValueError, match=r"must be .module:function."):
        declare(setup="module.function")
    with pytest.raises(ValueError, match="extension name"):
        declare(name="Bad-Name")


def test_settings_named_by_module_and_class_are_imported_when_read() -> None:
    named = declare(settings="ocireg.ext.lint:LintSettings")
    from ocireg.ext.lint import LintSettings

    assert named.settings_model() is LintSettings
    assert declare().settings_model().__name__ == "ExtensionSettings"
    with pytest.raises(ValueError, match=r"must be .module:Class."):
        declare(settings="ocireg.ext.lint.LintSettings")
    with pytest.raises(TypeError, match="is not an ExtensionSettings"):
        declare(settings="ocireg.config:Config").settings_model()  # a model, not a section's


def test_a_named_section_is_checked_with_its_model(tmp_path: Path) -> None:
    # events names its settings; a configuration with the section is checked by them
    path = tmp_path / "config.json"
    sink = {"type": "http", "address": "http://127.0.0.1:1/hook", "events": ["nope"]}
    path.write_text(
        json.dumps(
            {"storage": {"rootDirectory": "/d"}, "extensions": {"events": {"sinks": [sink]}}}
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any("sinks.0.events: unknown event type" in p for p in caught.value.problems), (
        caught.value.problems
    )
