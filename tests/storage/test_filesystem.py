from __future__ import annotations

from pathlib import Path

import pytest

from ocireg.storage.driver import StorageDriver
from ocireg.storage.filesystem import FilesystemDriver
from tests.storage.driver_suite import DriverSuite


class TestFilesystemDriver(DriverSuite):
    @pytest.fixture(params=[False, True], ids=["no-fsync", "fsync"])
    def driver(self, tmp_path: Path, request: pytest.FixtureRequest) -> StorageDriver:
        return FilesystemDriver(tmp_path / "root", fsync=request.param)


def test_local_path_points_into_root(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    driver.put_content("a/b", b"x")
    local = driver.local_path("a/b")
    assert local is not None
    assert local.read_bytes() == b"x"


def test_link_is_a_hard_link(tmp_path: Path) -> None:
    driver = FilesystemDriver(tmp_path)
    driver.put_content("src", b"x")
    driver.link("src", "dst")
    assert (tmp_path / "src").stat().st_ino == (tmp_path / "dst").stat().st_ino
