"""The inventory of an image's packages, read from its layers as they stream by.

``inventory(layers)`` takes the layers bottom first as (digest, opener) pairs and returns an
``ocireg.ext.cve.packages.Inventory``: every package the image holds, with its OSV ecosystem,
purl, the file it was found in and the layer that last installed it, and the OS release.
Readers: dpkg (``status`` and distroless ``status.d``), apk, rpm (sqlite rpmdb), Python
(``dist-info``/``egg-info``), npm (``node_modules``), Go binaries (embedded build info) and
Java archives (``pom.properties``). ``source.image_layers`` gives the layers of an image stored
in the registry; ``sbom.cyclonedx_json`` writes an inventory as CycloneDX.
"""

from __future__ import annotations

from .errors import InventoryError
from .scan import Opener, inventory

__all__ = ["InventoryError", "Opener", "inventory"]
