"""An extension declaration refuses what the OCI extension rules forbid."""

from __future__ import annotations

import pytest

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
