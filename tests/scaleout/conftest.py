"""Session services for the scale-out scenarios: one moto S3 server with one bucket, one
PostgreSQL cluster. Each test gets a fresh prefix in the bucket and a fresh database."""

from __future__ import annotations

import pytest

from tests.postgres import Postgres, postgres
from tests.s3server import S3Endpoint, s3_endpoint
from tests.scaleout.instances import Shared, new_shared
from tests.tools import require_binary

__all__ = ["postgres", "s3_endpoint"]  # session fixtures, used here by name


@pytest.fixture(scope="session")
def bucket(s3_endpoint: S3Endpoint) -> str:
    return s3_endpoint.new_bucket()


@pytest.fixture
def shared(s3_endpoint: S3Endpoint, bucket: str, postgres: Postgres) -> Shared:
    return new_shared(s3_endpoint, bucket, postgres)


@pytest.fixture(scope="session")
def skopeo() -> str:
    return require_binary("skopeo", "apt-get install skopeo")
