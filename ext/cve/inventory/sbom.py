"""An inventory as a CycloneDX 1.5 JSON document (``cyclonedx-python-lib``).

The OS release is an ``operating-system`` component; every package a ``library`` component with
its purl, and properties for what CycloneDX has no field for: the OSV ecosystem, the layer
that installed it and the file it was found in (``ocireg:*``). ``bom-ref`` is the purl, made
unique by the path when one package is found in several places.

The document is serialized without the library's ``validate()`` step: it registers each
component's dependency entry by a linear search, quadratic in the components (over 3 s for a
full Debian image here); what it checks (references resolve, no duplicate refs) holds by
construction, and a test validates the output against CycloneDX's JSON schema.
"""

from __future__ import annotations

import json
from collections import Counter

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


def _component(package: Package, bom_ref: str) -> Component:
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        purl=PackageURL.from_string(package.purl),
        bom_ref=bom_ref,
        properties=_properties(package),
    )


def bom(inventory: Inventory, subject: str = "") -> Bom:
    """The document's model; ``subject`` (the image's reference or digest) names its root."""
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
    counts = Counter(package.purl for package in inventory.packages)
    used: set[str] = set()
    for package in inventory.packages:
        ref = package.purl if counts[package.purl] == 1 else f"{package.purl}#{package.path}"
        while ref in used:  # one package listed twice in one file
            ref += "+"
        used.add(ref)
        document.components.add(_component(package, ref))
    return document


SCHEMA = "http://cyclonedx.org/schema/bom-1.5.schema.json"


def cyclonedx_json(inventory: Inventory, subject: str = "") -> str:
    model = bom(inventory, subject)
    body = json.loads(model.as_json(view_=SchemaVersion1Dot5))  # type: ignore[attr-defined]
    return json.dumps({"$schema": SCHEMA, "bomFormat": "CycloneDX", "specVersion": "1.5", **body})
