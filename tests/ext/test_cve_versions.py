"""OSV ranges evaluated with each ecosystem's own version order."""

from __future__ import annotations

import pytest

from ocireg.ext.cve.versions import affects, package_key

DEB11U4 = [{"introduced": "0"}, {"fixed": "1.1.1n-0+deb11u4"}]
INTRO_FIXED = [{"type": "ECOSYSTEM", "events": DEB11U4}]


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("1.1.1n-0+deb11u3", True),
        ("1.1.1n-0+deb11u4", False),  # the fixed version itself
        ("1.1.1n-0+deb11u5", False),
        ("1.1.1k-1+deb11u2", True),
        ("1:1.0", False),  # an epoch outranks everything without one
        ("1.1.1n-0+deb11u4~bpo1", True),  # "~" sorts before the empty string
    ],
)
def test_debian_versions_compare_as_dpkg_does(version: str, affected: bool) -> None:
    verdict = affects("Debian:11", version, INTRO_FIXED, [])
    assert verdict.affected is affected
    assert verdict.fixed == ("1.1.1n-0+deb11u4" if affected else "")


@pytest.mark.parametrize(
    ("ecosystem", "version", "events", "affected"),
    [
        ("Alpine:v3.17", "3.0.7-r2", [{"introduced": "0"}, {"fixed": "3.0.8-r0"}], True),
        ("Alpine:v3.17", "3.0.8-r0", [{"introduced": "0"}, {"fixed": "3.0.8-r0"}], False),
        ("Alpine:v3.17", "3.0.10-r0", [{"introduced": "0"}, {"fixed": "3.0.8-r0"}], False),
        ("PyPI", "2.30.0", [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}], True),
        ("PyPI", "2.31.0rc1", [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}], True),
        ("PyPI", "2.2.1", [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}], False),
        ("PyPI", "2.31.0", [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}], False),
        ("npm", "6.5.3", [{"introduced": "0"}, {"fixed": "6.5.4"}], True),
        ("npm", "6.10.0", [{"introduced": "0"}, {"fixed": "6.5.4"}], False),
        ("Go", "v0.3.2", [{"introduced": "0"}, {"fixed": "0.3.3"}], True),
        ("Go", "v0.3.10", [{"introduced": "0"}, {"fixed": "0.3.3"}], False),
        ("Maven", "2.0-rc1", [{"introduced": "2.0-beta9"}, {"fixed": "2.3.1"}], True),
        ("Maven", "2.0-alpha1", [{"introduced": "2.0-beta9"}, {"fixed": "2.3.1"}], False),
        ("Red Hat", "1:3.0.7-16.el9", [{"introduced": "0"}, {"fixed": "1:3.0.7-18.el9"}], True),
        ("Red Hat", "1:3.0.7-18.el9", [{"introduced": "0"}, {"fixed": "1:3.0.7-18.el9"}], False),
        ("PyPI", "1.5", [{"introduced": "1.0"}, {"last_affected": "1.5"}], True),
        ("PyPI", "1.5.1", [{"introduced": "1.0"}, {"last_affected": "1.5"}], False),
    ],
)
def test_each_ecosystem_has_its_own_order(
    ecosystem: str, version: str, events: list[dict[str, str]], affected: bool
) -> None:
    kind = "SEMVER" if ecosystem in ("Go", "npm") else "ECOSYSTEM"
    assert affects(ecosystem, version, [{"type": kind, "events": events}], []).affected is affected


def test_several_ranges_and_the_fix_of_the_one_that_matched() -> None:
    ranges = [
        {"type": "ECOSYSTEM", "events": [{"introduced": "2.13.0"}, {"fixed": "2.15.0"}]},
        {"type": "ECOSYSTEM", "events": [{"introduced": "2.4.0"}, {"fixed": "2.12.2"}]},
    ]
    assert affects("Maven", "2.14.1", ranges, []).fixed == "2.15.0"
    assert affects("Maven", "2.12.1", ranges, []).fixed == "2.12.2"
    assert not affects("Maven", "2.12.2", ranges, []).affected


def test_listed_versions_match_and_git_ranges_alone_do_not() -> None:
    commit = "3f38f73218e5e782fe411ccbb3b44a793c0b343a"
    events = [{"introduced": "0"}, {"fixed": commit}]
    git = [{"type": "GIT", "repo": "https://github.com/pikepdf/pikepdf", "events": events}]
    assert affects("PyPI", "2.9.0", git, ["2.8.0", "2.9.0"]).affected
    assert not affects("PyPI", "2.10.0", git, ["2.8.0", "2.9.0"]).affected


def test_what_does_not_parse_matches_nothing() -> None:
    events = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version!"}]}]
    assert not affects("npm", "1.0.0", events, []).affected
    assert not affects("npm", "garbage version", INTRO_FIXED, []).affected
    assert not affects("NoSuchEcosystem", "1.0", INTRO_FIXED, []).affected


def test_pypi_names_are_normalised() -> None:
    assert package_key("PyPI", "Zope.Interface") == package_key("PyPI", "zope_interface")
    assert package_key("npm", "Elliptic") == "Elliptic"
