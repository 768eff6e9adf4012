"""The s3 driver's small requests made by hand (``ocireg.storage.s3small``): signed as S3
checks signatures, and every answer they do not expect is made again through botocore, whose
errors the caller sees as before.

The driver suite (``test_s3.py``) runs every driver operation through this path; here, what
only it can get wrong: a signature an endpoint that checks them accepts, and what happens on
an error answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from ocireg.storage.driver import PathNotFoundError
from ocireg.storage.s3 import S3Driver
from tests.liveserver import free_port
from tests.s3server import ACCESS_KEY, ENV, REGION, SECRET_KEY, S3Endpoint, _wait, s3_endpoint
from tests.storage.test_s3 import make_driver

__all__ = ["s3_endpoint"]  # the session fixture, used here by name

BUCKET = "signatures-checked"


@pytest.fixture(scope="module")
def checking_endpoint() -> Iterator[tuple[str, str, str]]:
    """A moto server that checks signatures (after its first requests, which make an IAM
    user with a key that may do everything): (url, access key, secret key)."""
    import boto3

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="moto-auth-") as folder:
        log = Path(folder) / "moto.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **ENV, "INITIAL_NO_AUTH_ACTION_COUNT": "8"},
            )
        try:
            _wait(url, process, log)
            iam = boto3.client(
                "iam",
                endpoint_url=url,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            )
            iam.create_user(UserName="registry")
            key = iam.create_access_key(UserName="registry")["AccessKey"]
            everything = {"Effect": "Allow", "Action": "*", "Resource": "*"}
            iam.put_user_policy(
                UserName="registry",
                PolicyName="all",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [everything]}),
            )
            access, secret = key["AccessKeyId"], key["SecretAccessKey"]
            _until_signatures_are_checked(url, access)
            boto3.client(
                "s3",
                endpoint_url=url,
                region_name=REGION,
                aws_access_key_id=access,
                aws_secret_access_key=secret,
            ).create_bucket(Bucket=BUCKET)
            yield url, access, secret
        finally:
            process.terminate()
            process.wait(10)


def _until_signatures_are_checked(url: str, access: str) -> None:
    """Spend the actions moto allows before it checks (its health probe took some)."""
    import boto3

    wrong = boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=access,
        aws_secret_access_key="wrong",
    )
    for _ in range(10):
        try:
            wrong.list_buckets()
        except ClientError:
            return
    raise RuntimeError("moto does not check signatures")


def _checked_driver(endpoint: tuple[str, str, str], secret: str | None = None) -> S3Driver:
    url, access, right = endpoint
    return S3Driver(
        bucket=BUCKET,
        region=REGION,
        regionendpoint=url,
        secure=False,
        accesskey=access,
        secretkey=secret or right,
        rootdirectory="some/prefix",
    )


def _sent(driver: S3Driver) -> list[str]:
    """The requests the driver's client sends from now on, by operation."""
    sent: list[str] = []
    driver.client.meta.events.register(
        "before-send.s3", lambda event_name, **_: sent.append(event_name.rsplit(".", 1)[-1])
    )
    return sent


def test_an_endpoint_that_checks_signatures_accepts_each_small_request(
    checking_endpoint: tuple[str, str, str],
) -> None:
    driver = _checked_driver(checking_endpoint)
    sent = _sent(driver)
    driver.put_content("team/app/index.json", b"{}")
    assert driver.get_content("team/app/index.json") == b"{}"
    assert driver.stat("team/app/index.json").size == 2
    with driver.reader("team/app/index.json", 1) as handle:
        assert handle.read() == b"}"
    assert driver.put_new_content("team/app/blobs/sha256/ab", b"manifest")
    assert not driver.put_new_content("team/app/blobs/sha256/ab", b"manifest")
    with pytest.raises(PathNotFoundError):
        driver.get_content("team/app/missing")
    # each was one request: none was refused and made again through botocore
    assert sent == ["PutObject", "GetObject", "HeadObject", "GetObject"] + ["PutObject"] * 2 + [
        "GetObject"
    ]


def test_a_refused_signature_raises_botocores_error(
    checking_endpoint: tuple[str, str, str],
) -> None:
    driver = _checked_driver(checking_endpoint, secret="not-the-secret")
    sent = _sent(driver)
    with pytest.raises(ClientError) as refused:
        driver.get_content("team/app/index.json")
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError):
        driver.put_content("team/app/index.json", b"{}")
    # the first request by hand, then botocore (which does not retry a refusal); from then
    # on botocore alone: the path is off for an endpoint that answers what it does not expect
    assert sent == ["GetObject", "GetObject", "PutObject"]


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self) -> list[bytes]:
        return [self.data]


def test_a_server_error_is_made_again_through_botocore_and_the_path_stays_on(
    s3_endpoint: S3Endpoint,
) -> None:
    driver = make_driver(s3_endpoint)
    driver.put_content("a/b", b"content")
    sent = _sent(driver)
    failures = [b"<Error><Code>SlowDown</Code><Message>later</Message></Error>"]

    def busy(request: Any, **_: object) -> AWSResponse | None:
        return AWSResponse(request.url, 503, {}, _Body(failures.pop())) if failures else None

    driver.client.meta.events.register("before-send.s3.GetObject", busy)
    assert driver.get_content("a/b") == b"content"
    assert driver.get_content("a/b") == b"content"
    assert sent == ["GetObject"] * 3  # by hand (503), botocore, then by hand again


def test_a_missing_bucket_is_botocores_error_as_before(s3_endpoint: S3Endpoint) -> None:
    driver = make_driver(s3_endpoint, bucket="no-such-bucket-here")
    with pytest.raises(ClientError) as missing:
        driver.get_content("a/b")
    assert missing.value.response["Error"]["Code"] == "NoSuchBucket"
