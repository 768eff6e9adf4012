"""Python distributions: real dist-info and egg-info trees of packages installed here."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from ocireg.ext.cve.inventory import inventory

from .images import File, layer, tree

SITE = "usr/local/lib/python3.11/site-packages"
DISTRIBUTIONS = ("PyYAML", "cvss", "univers", "packageurl-python", "idna")


def dist_info(name: str) -> Path:
    distribution = importlib.metadata.distribution(name)
    path = Path(str(distribution.locate_file(""))) / next(
        str(f).split("/")[0] for f in distribution.files or [] if ".dist-info/" in str(f)
    )
    assert path.name.endswith(".dist-info"), path
    return path


def test_dist_info_trees_as_importlib_metadata_reads_them() -> None:
    files = [
        f for name in DISTRIBUTIONS for f in tree(dist_info(name), f"{SITE}/{dist_info(name).name}")
    ]
    found = inventory([layer(files)])
    expected = {
        (d.metadata["Name"], d.version) for d in map(importlib.metadata.distribution, DISTRIBUTIONS)
    }
    assert {(p.name, p.version) for p in found.packages} == expected
    assert {p.ecosystem for p in found.packages} == {"PyPI"}
    yaml = next(p for p in found.packages if p.name == "PyYAML")
    assert yaml.purl == f"pkg:pypi/pyyaml@{yaml.version}"  # purl's pypi names are lowercase
    assert yaml.path == f"{SITE}/{dist_info('PyYAML').name}/METADATA"


def egg_infos() -> list[Path]:
    found = sorted(Path("/usr/lib/python3/dist-packages").glob("*.egg-info"))
    if not any(path.is_dir() for path in found):
        pytest.skip("no egg-info directory on this machine")
    return found


def test_egg_info_directories_and_files() -> None:
    files: list[File] = []
    for path in egg_infos():
        under = f"usr/lib/python3/dist-packages/{path.name}"
        files += tree(path, under) if path.is_dir() else [File(under, source=path)]
    found = inventory([layer(files)])
    expected = {
        (d.metadata["Name"], d.version)
        for d in map(importlib.metadata.PathDistribution, egg_infos())
        if d.metadata["Name"]
    }
    assert {(p.name, p.version) for p in found.packages} == expected


def test_metadata_without_a_version_is_not_a_package() -> None:
    found = inventory([layer([File(f"{SITE}/x-1.dist-info/METADATA", b"Name: x\n\nbody\n")])])
    assert found.packages == ()
