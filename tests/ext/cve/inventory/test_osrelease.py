"""os-release as distributions write it: quoted or not, comments, and this machine's own."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from ocireg.ext.cve.inventory import inventory
from ocireg.ext.cve.packages import OsRelease

from .images import File, layer


def release_of(text: bytes) -> OsRelease | None:
    return inventory([layer([File("etc/os-release", text)])]).os


def test_this_machines_os_release_as_python_reads_it() -> None:
    if not Path("/etc/os-release").exists():
        pytest.skip("no /etc/os-release here")
    expected = platform.freedesktop_os_release()
    found = inventory([layer([File("etc/os-release", source=Path("/etc/os-release"))])]).os
    assert found is not None
    assert (found.id, found.version_id, found.version_codename, found.pretty_name) == (
        expected["ID"],
        expected.get("VERSION_ID", ""),
        expected.get("VERSION_CODENAME", ""),
        expected["PRETTY_NAME"],
    )


def test_quotes_comments_and_escapes() -> None:
    text = (
        b"# written by hand\n"
        b"ID='opensuse-leap'\n"
        b'VERSION_ID="15.5"\n'
        b'PRETTY_NAME="openSUSE \\"Leap\\" 15.5"\n'
        b'BROKEN="unterminated\n'
    )
    found = release_of(text)
    assert found is not None
    assert (found.id, found.version_id, found.pretty_name) == (
        "opensuse-leap",
        "15.5",
        'openSUSE "Leap" 15.5',
    )


def test_without_an_id_there_is_no_release() -> None:
    assert release_of(b'NAME="Something"\nVERSION_ID=1\n') is None
