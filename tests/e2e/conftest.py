from __future__ import annotations

import pytest

from tests.tools import require_binary


@pytest.fixture(scope="module")
def skopeo() -> str:
    return require_binary("skopeo", "apt-get install skopeo")
