from __future__ import annotations

import pytest

from tests.tools import require_binary


@pytest.fixture(scope="module")
def skopeo() -> str:
    return require_binary("skopeo", "apt-get install skopeo")


@pytest.fixture(scope="module")
def podman() -> str:
    return require_binary("podman", "apt-get install podman")


@pytest.fixture(scope="module")
def buildah() -> str:
    return require_binary("buildah", "apt-get install buildah")
