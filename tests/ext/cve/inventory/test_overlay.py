"""Layers stacked as a container runtime stacks them: whiteouts, opaque directories, files
hiding directories, and the layer each package is credited to. Each case runs twice: with
every layer read, and with the layers' readings kept by digest (one cache for the whole case,
so an image sharing layers with an earlier one stacks their kept readings)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocireg.ext.cve.inventory import inventory
from ocireg.ext.cve.packages import Inventory

from .images import File, Link, layer, opaque, os_release_files, whiteout
from .test_cache import Kept, through_cache
from .test_python import SITE, dist_info

STATUS = Path("/var/lib/dpkg/status")
MODULES = "app/node_modules"


@pytest.fixture(autouse=True, params=["read", "kept"])
def _readings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if request.param == "kept":
        monkeypatch.setattr(sys.modules[__name__], "inventory", through_cache(Kept()))
    yield


def dist(name: str) -> list[File]:
    source = dist_info(name)
    return [File(f"{SITE}/{source.name}/METADATA", source=source / "METADATA")]


def dist_dir(name: str) -> str:
    return f"{SITE}/{dist_info(name).name}"


def npm_package(name: str, version: str) -> File:
    return File(
        f"{MODULES}/{name}/package.json", f'{{"name": "{name}", "version": "{version}"}}'.encode()
    )


def names(found: Inventory) -> set[str]:
    return {p.name for p in found.packages}


def test_a_package_removed_in_a_later_layer_is_gone() -> None:
    base = layer([*dist("PyYAML"), *dist("idna")])
    removal = layer([whiteout(dist_dir("PyYAML"))])
    found = inventory([base, removal])
    assert names(found) == {"idna"}
    assert found.packages[0].layer == base[0]  # credited to the layer that installed it


def test_a_whiteout_does_not_hide_its_own_layer() -> None:
    """The image spec: whiteouts apply to lower layers only."""
    found = inventory([layer([*dist("PyYAML"), whiteout(dist_dir("PyYAML"))])])
    assert names(found) == {"PyYAML"}


def test_an_opaque_directory_hides_what_lower_layers_put_in_it() -> None:
    base = layer([npm_package("left-pad", "1.3.0"), npm_package("lodash", "4.17.20")])
    top = layer([opaque(MODULES), npm_package("lodash", "4.17.21")])
    found = inventory([base, top])
    assert [(p.name, p.version, p.layer) for p in found.packages] == [("lodash", "4.17.21", top[0])]


def test_an_upgrade_replaces_the_version_and_the_layer() -> None:
    base = layer([npm_package("lodash", "4.17.20")])
    top = layer([npm_package("lodash", "4.17.21")])
    found = inventory([base, top])
    assert [(p.version, p.layer) for p in found.packages] == [("4.17.21", top[0])]


def test_a_file_put_where_a_directory_was_hides_its_contents() -> None:
    base = layer([npm_package("lodash", "4.17.20")])
    top = layer([File(MODULES, b"not a directory any more")])
    assert inventory([base, top]).packages == ()


def test_a_rewritten_dpkg_status_keeps_each_unchanged_package_in_its_layer() -> None:
    """apt-get install in a second layer rewrites the whole status file; the packages it did
    not touch were still installed by the first layer."""
    paragraphs = STATUS.read_bytes().split(b"\n\n")
    half = b"\n\n".join(paragraphs[: len(paragraphs) // 2]) + b"\n"
    base = layer([File("var/lib/dpkg/status", half), *os_release_files()])
    top = layer([File("var/lib/dpkg/status", source=STATUS)])
    first = inventory([base])
    both = inventory([base, top])
    in_base = {p.name for p in first.packages}
    assert in_base and len(both.packages) > len(first.packages)
    for package in both.packages:
        assert package.layer == (base[0] if package.name in in_base else top[0]), package.name


def test_os_release_through_its_link_and_after_a_whiteout() -> None:
    dpkg = File("var/lib/dpkg/status", source=STATUS)
    base = layer([dpkg, *os_release_files()])
    assert inventory([base]).os is not None
    assert inventory([base]).packages[0].ecosystem == "Debian:12"
    # /etc/os-release removed: /usr/lib/os-release still says which release it is
    assert inventory([base, layer([whiteout("etc/os-release")])]).os == inventory([base]).os
    # both removed: the release is unknown and OS packages are not release-qualified
    gone = inventory([base, layer([whiteout("etc/os-release"), whiteout("usr/lib")])])
    assert gone.os is None
    assert gone.packages[0].ecosystem == "Debian"


def test_a_hard_link_to_a_package_file_is_a_package_where_it_is_linked() -> None:
    linked = f"{MODULES}/copy/package.json"
    found = inventory(
        [
            layer(
                [
                    npm_package("lodash", "4.17.21"),
                    Link(linked, f"{MODULES}/lodash/package.json", hard=True),
                ]
            )
        ]
    )
    assert sorted(p.path for p in found.packages) == [linked, f"{MODULES}/lodash/package.json"]


def test_names_that_climb_out_of_the_root_stay_inside_it() -> None:
    """A runtime resolves ``../`` at the root to the root; so does the inventory."""
    found = inventory([layer([File("../../var/lib/dpkg/status", STATUS.read_bytes()[:2000])])])
    assert {p.path for p in found.packages} == {"var/lib/dpkg/status"}


def test_a_directory_put_where_a_file_was_hides_the_file() -> None:
    egg = f"{SITE}/demo-1.0.egg-info"
    base = layer([File(egg, b"Metadata-Version: 1.1\nName: demo\nVersion: 1.0\n")])
    assert names(inventory([base])) == {"demo"}
    assert inventory([base, layer([File(egg, directory=True)])]).packages == ()
    # a directory over a directory merges: what the lower one holds stays
    lower = layer([npm_package("lodash", "4.17.21")])
    assert names(inventory([lower, layer([File(MODULES, directory=True)])])) == {"lodash"}
