"""moto's standalone S3 server, started once per test session as its own process on loopback.

Tests talk to it only through the S3 API (the driver, boto3), as they would to AWS. Import the
``s3_endpoint`` fixture into a test module to use it; each test makes a bucket of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.liveserver import free_port
from tests.tools import missing

# Fake credentials, passed everywhere: with none, the SDKs would probe the cloud metadata
# address, which must never be contacted here.
ACCESS_KEY = "ocireg-test-key"
SECRET_KEY = "ocireg-test-secret"
REGION = "us-east-1"
ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
}


@dataclass(frozen=True)
class S3Endpoint:
    url: str

    def new_bucket(self) -> str:
        """A fresh, empty bucket's name (created through the S3 API)."""
        import boto3

        name = f"t-{uuid.uuid4().hex[:20]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        client.create_bucket(Bucket=name)
        return name

    def driver_config(self, bucket: str, **extra: object) -> dict[str, object]:
        """zot's ``storage.storageDriver`` section for ``bucket`` on this endpoint."""
        return {
            "name": "s3",
            "region": REGION,
            "regionendpoint": self.url,
            "bucket": bucket,
            "secure": False,
            "accesskey": ACCESS_KEY,
            "secretkey": SECRET_KEY,
            **extra,
        }


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"moto_server did not start:\n{log.read_text()}")


@contextmanager
def moto_process(prefix: str = "moto-", env: dict[str, str] | None = None) -> Iterator[str]:
    """A moto server of its own on loopback, its URL while the block runs; ``env`` on top of
    the fake credentials (e.g. moto's settings for checking signatures)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        log = Path(folder) / "moto.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **ENV, **(env or {})},
            )
        try:
            _wait(url, process, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        missing("moto_server is not installed; install the test extra (moto[server])")
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    with moto_process() as url:
        yield S3Endpoint(url)
