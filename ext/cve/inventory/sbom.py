"""An inventory as a CycloneDX 1.5 JSON document (``cyclonedx-python-lib``).

The OS release is an ``operating-system`` component; every package a ``library`` component with
its purl, and properties for what CycloneDX has no field for: the OSV ecosystem, the layer
that installed it and the file it was found in (``ocireg:*``). ``bom-ref`` is the purl, made
unique by the path when one package is found in several places.

The library writes the document's frame (metadata, serial number, the OS component); the
package components are written here, as the library would write them. The library keeps
components in a sorted set compared through their full field tuples, which cost 1.2 CPU s for
a full Debian image (849 packages; see bench/RESULTS.md), where an SBOM is now answered per
request. Its ``validate()`` step is skipped too: it registers each component's dependency
entry by a linear search, quadratic in the components; what it checks (references resolve,
no duplicate refs) holds by construction, and a test validates the output against
CycloneDX's JSON schema.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.schema.schema import SchemaVersion1Dot5
from packageurl import PackageURL

from ..packages import Inventory, Package

PROPERTY_PREFIX = "ocireg:"


def _properties(package: Package) -> list[Property]:
    values = {
        "ecosystem": package.ecosystem,
        "layer": package.layer,
        "path": package.path,
        "source_name": package.source_name,
        "source_version": package.source_version,
    }
    return [Property(name=PROPERTY_PREFIX + key, value=v) for key, v in values.items() if v]


def _component(package: Package, bom_ref: str) -> dict[str, Any]:
    """A ``library`` component, as the library writes one (its purl in canonical form)."""
    return {
        "bom-ref": bom_ref,
        "name": package.name,
        "properties": [{"name": p.name, "value": p.value} for p in _properties(package)],
        "purl": str(PackageURL.from_string(package.purl)),
        "type": ComponentType.LIBRARY.value,
        "version": package.version,
    }


def _frame(inventory: Inventory, subject: str) -> Bom:
    """The document without its packages; ``subject`` (the image's reference or digest)
    names its root."""
    document = Bom()
    if subject:
        document.metadata.component = Component(type=ComponentType.CONTAINER, name=subject)
    if inventory.os is not None:
        document.components.add(
            Component(
                type=ComponentType.OPERATING_SYSTEM,
                name=inventory.os.id,
                version=inventory.os.version_id or None,
                description=inventory.os.pretty_name or None,
                bom_ref=f"os:{inventory.os.id}",
            )
        )
    return document


def _packages(inventory: Inventory) -> list[dict[str, Any]]:
    counts = Counter(package.purl for package in inventory.packages)
    used: set[str] = set()
    components = []
    for package in inventory.packages:
        ref = package.purl if counts[package.purl] == 1 else f"{package.purl}#{package.path}"
        while ref in used:  # one package listed twice in one file
            ref += "+"
        used.add(ref)
        components.append(_component(package, ref))
    return components


SCHEMA = "http://cyclonedx.org/schema/bom-1.5.schema.json"


def cyclonedx_json(inventory: Inventory, subject: str = "") -> str:
    model = _frame(inventory, subject)
    body = json.loads(model.as_json(view_=SchemaVersion1Dot5))  # type: ignore[attr-defined]
    components = [*body.get("components", []), *_packages(inventory)]
    if components:
        body["components"] = components
    return json.dumps({"$schema": SCHEMA, "bomFormat": "CycloneDX", "specVersion": "1.5", **body})
