"""npm packages: ``node_modules/<name>/package.json`` and ``node_modules/@scope/<name>/...``.

Only the manifest at a package's root counts; the ``package.json`` files some packages carry
deeper (``lib/package.json``, test fixtures) describe nothing installed.
"""

from __future__ import annotations

import json
import re

from .records import Record

MANIFEST = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/@.][^/]*/package\.json$")


def wants(path: str) -> bool:
    return (
        path.endswith("/package.json") and "node_modules/" in path and bool(MANIFEST.search(path))
    )


def read(data: bytes) -> tuple[Record, ...]:
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError):
        return ()
    if not isinstance(manifest, dict):
        return ()
    name, version = manifest.get("name"), manifest.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return ()
    return (Record(kind="npm", name=name, version=version),)
