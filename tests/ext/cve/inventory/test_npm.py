"""npm: the packages npm itself bundles on this machine (``/usr/lib/node_modules/npm``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocireg.ext.cve.inventory import inventory

from .images import File, layer, tree

NPM = Path("/usr/lib/node_modules/npm")


def installed(node_modules: Path) -> set[tuple[str, str]]:
    """Every package directory under ``node_modules``, nested ones too, by its manifest."""
    found = set()
    for directory in node_modules.iterdir():
        packages = directory.iterdir() if directory.name.startswith("@") else [directory]
        for package in packages:
            manifest = package / "package.json"
            if not manifest.is_file():
                continue
            data = json.loads(manifest.read_text())
            found.add((data["name"], data["version"]))
            if (package / "node_modules").is_dir():
                found |= installed(package / "node_modules")
    return found


def test_every_bundled_package_and_no_inner_manifest() -> None:
    if not (NPM / "node_modules").is_dir():
        pytest.skip("npm is not installed in /usr/lib/node_modules")
    npm = json.loads((NPM / "package.json").read_text())
    expected = {(npm["name"], npm["version"])} | installed(NPM / "node_modules")
    # the tree also holds package.json files that are no package: dist/esm/package.json
    inner = list(NPM.rglob("dist/*/package.json"))
    assert inner, "the real tree has inner manifests; this test checks they are skipped"
    found = inventory([layer(tree(NPM, "usr/lib/node_modules/npm"))])
    assert {(p.name, p.version) for p in found.packages} == expected
    assert {p.ecosystem for p in found.packages} == {"npm"}
    scoped = next(p for p in found.packages if p.name.startswith("@"))
    scope, name = scoped.name.split("/")
    assert scoped.purl == f"pkg:npm/%40{scope[1:]}/{name}@{scoped.version}"


def test_a_hostile_manifest_is_no_package() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    found = inventory(
        [
            layer(
                [
                    File("node_modules/deep/package.json", deep),
                    File("node_modules/list/package.json", b'["name", "version"]'),
                    File("node_modules/num/package.json", b'{"name": "num", "version": 1}'),
                    File("node_modules/ok/package.json", b'{"name": "ok", "version": "1.0.0"}'),
                ]
            )
        ]
    )
    assert [p.name for p in found.packages] == ["ok"]
