"""Loaded by the live servers of the CVE tests (on their PYTHONPATH): stands in for
``ocireg.ext.cve.inventory``, the inventory readers, so that these tests drive scanning and
search with inventories they choose. A layer is a JSON document naming one of
``tests.ext.cveimages``'s inventories; any other layer fails its image's scan."""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

NAME = "ocireg.ext.cve.inventory"


def inventory(layers: Any, cache: Any = None) -> Any:
    from tests.ext import cveimages

    found = None
    for _digest, opener in layers:
        with opener() as blob:
            found = getattr(cveimages, json.loads(blob.read())["inventory"])
    return found


class _Stand(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        return importlib.util.spec_from_loader(fullname, self) if fullname == NAME else None

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.inventory = inventory  # type: ignore[attr-defined]


sys.meta_path.insert(0, _Stand())
