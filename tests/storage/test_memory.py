from __future__ import annotations

import pytest

from ocireg.storage.driver import StorageDriver
from ocireg.storage.memory import MemoryDriver
from tests.storage.driver_suite import DriverSuite


class TestMemoryDriver(DriverSuite):
    @pytest.fixture
    def driver(self) -> StorageDriver:
        return MemoryDriver()
