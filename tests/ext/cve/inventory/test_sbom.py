"""The inventory as CycloneDX 1.5 JSON, checked against CycloneDX's own schema."""

from __future__ import annotations

import json
from pathlib import Path

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from ocireg.ext.cve.inventory import inventory
from ocireg.ext.cve.inventory.sbom import cyclonedx_json

from .images import File, layer, os_release_files
from .test_java import LOG4J


def test_a_debian_image_with_a_jar_is_a_valid_cyclonedx_document() -> None:
    base = layer(
        [File("var/lib/dpkg/status", source=Path("/var/lib/dpkg/status")), *os_release_files()]
    )
    app = layer([File("opt/a/log4j.jar", LOG4J), File("opt/b/log4j.jar", LOG4J)])
    found = inventory([base, app])
    document = cyclonedx_json(found, "example/app@sha256:" + "0" * 64)
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(document) is None
    bom = json.loads(document)
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5"
    assert bom["metadata"]["component"] == {
        "name": "example/app@sha256:" + "0" * 64,
        "type": "container",
    }
    components = bom["components"]
    system = [c for c in components if c["type"] == "operating-system"]
    assert [(c["name"], c["version"]) for c in system] == [("debian", "12")]
    libraries = [c for c in components if c["type"] == "library"]
    assert sorted(c["purl"] for c in libraries) == sorted(p.purl for p in found.packages)
    assert len({c["bom-ref"] for c in components}) == len(components)  # the jar twice, too
    log4j = [c for c in libraries if c["name"] == "org.apache.logging.log4j:log4j-core"]
    properties = [{p["name"]: p["value"] for p in c["properties"]} for c in log4j]
    assert sorted(p["ocireg:path"] for p in properties) == ["opt/a/log4j.jar", "opt/b/log4j.jar"]
    assert {p["ocireg:layer"] for p in properties} == {app[0]}
    assert {p["ocireg:ecosystem"] for p in properties} == {"Maven"}


def test_an_empty_image_is_an_empty_document() -> None:
    document = cyclonedx_json(inventory([layer([])]))
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(document) is None
    assert json.loads(document).get("components", []) == []
