"""The s3 driver's small requests made by hand (``ocireg.storage.s3small``): signed as S3
checks signatures, and every answer they do not expect is made again through botocore, whose
errors the caller sees as before.

The driver suite (``test_s3.py``) runs every driver operation through this path; here, what
only it can get wrong: a signature an endpoint that checks them accepts, and what happens on
an error answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from ocireg.storage import s3small
from ocireg.storage.driver import PathNotFoundError
from ocireg.storage.s3 import S3Driver
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Endpoint, moto_process, s3_endpoint
from tests.storage.test_s3 import make_driver

__all__ = ["s3_endpoint"]  # the session fixture, used here by name

BUCKET = "signatures-checked"


@pytest.fixture(scope="module")
def checking_endpoint() -> Iterator[tuple[str, str, str]]:
    """A moto server that checks signatures (after its first requests, which make an IAM
    user with a key that may do everything): (url, access key, secret key)."""
    import boto3

    with moto_process("moto-auth-", {"INITIAL_NO_AUTH_ACTION_COUNT": "8"}) as url:
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


def checked_driver(endpoint: tuple[str, str, str], secret: str | None = None) -> S3Driver:
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
    driver = checked_driver(checking_endpoint)
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
    driver = checked_driver(checking_endpoint, secret="not-the-secret")
    sent = _sent(driver)
    with pytest.raises(ClientError) as refused:
        driver.get_content("team/app/index.json")
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError):
        driver.put_content("team/app/index.json", b"{}")
    # each refusal by hand, then through botocore (which does not retry a refusal); after
    # REFUSALS_OFF in a row botocore alone: the path is likely wrong for this endpoint
    with pytest.raises(ClientError):
        driver.get_content("team/app/index.json")
    with pytest.raises(ClientError):
        driver.get_content("team/app/index.json")
    assert sent == ["GetObject", "GetObject", "PutObject", "PutObject"] + ["GetObject"] * 3


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self) -> list[bytes]:
        return [self.data]


def _answering(driver: S3Driver, operation: str, answers: list[tuple[int, bytes]]) -> None:
    """The next requests of ``operation`` get ``answers`` (status, body) in turn (status 0:
    the endpoint's own answer)."""

    def answer(request: Any, **_: object) -> AWSResponse | None:
        if not answers:
            return None
        status, body = answers.pop(0)
        if not status:
            return None
        return AWSResponse(request.url, status, {}, _Body(body))

    driver.client.meta.events.register(f"before-send.s3.{operation}", answer)


_OWN = (0, b"")


def _error(code: str) -> bytes:
    return f"<Error><Code>{code}</Code><Message>m</Message></Error>".encode()


def test_a_busy_server_gets_botocores_first_backoff_before_botocore_asks_again(
    s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = make_driver(s3_endpoint)
    driver.put_content("a/b", b"content")
    sent = _sent(driver)
    waits: list[float] = []
    monkeypatch.setattr(s3small.time, "sleep", waits.append)
    monkeypatch.setattr(s3small.random, "random", lambda: 0.5)
    _answering(
        driver, "GetObject", [(503, _error("SlowDown")), _OWN, (400, _error("RequestTimeout"))]
    )
    assert driver.get_content("a/b") == b"content"
    assert driver.get_content("a/b") == b"content"
    assert driver.get_content("a/b") == b"content"
    # by hand (503), a wait, botocore; by hand (400 RequestTimeout), a wait, botocore; by hand
    assert sent == ["GetObject"] * 5
    assert waits == [0.5 * s3small.BACKOFF_SECONDS] * 2
    assert driver._small is not None and driver._small.enabled


def test_refusals_fall_back_one_call_at_a_time_until_several_in_a_row(
    s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = make_driver(s3_endpoint)
    driver.put_content("a/b", b"content")
    small = driver._small
    assert small is not None
    sent = _sent(driver)
    # a 403 on one object, an expired token: that call only, then by hand again
    refused = [(403, _error("AccessDenied")), (400, _error("ExpiredToken"))]
    _answering(driver, "GetObject", [refused[0], _OWN, _OWN, refused[1]])
    for _ in range(4):
        assert driver.get_content("a/b") == b"content"
    assert sent == ["GetObject"] * 6 and small.enabled
    # REFUSALS_OFF in a row: off for OFF_SECONDS, then by hand again
    sent.clear()
    wrong = [(301, _error("PermanentRedirect")), _OWN] * s3small.REFUSALS_OFF
    _answering(driver, "HeadObject", wrong)
    for _ in range(s3small.REFUSALS_OFF + 1):
        assert driver.stat("a/b").size == 7
    assert sent == ["HeadObject"] * (2 * s3small.REFUSALS_OFF + 1) and not small.enabled
    later = s3small.time.monotonic() + s3small.OFF_SECONDS + 1
    monkeypatch.setattr(s3small.time, "monotonic", lambda: later)
    sent.clear()
    assert driver.stat("a/b").size == 7
    assert sent == ["HeadObject"] and small.enabled


def test_bodies_above_the_small_size_go_through_botocore_with_its_checksum(
    s3_endpoint: S3Endpoint,
) -> None:
    driver = make_driver(s3_endpoint)
    headers: list[dict[str, str]] = []
    driver.client.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **_: headers.append(dict(request.headers)),
    )
    driver.put_content("small", bytes(s3small.SMALL_MOST))
    driver.put_content("large", bytes(s3small.SMALL_MOST + 1))
    assert driver.put_new_content("new-large", bytes(s3small.SMALL_MOST + 1))
    assert [("User-Agent" in sent) for sent in headers] == [False, True, True]
    assert "x-amz-checksum-crc32" in headers[1] and "If-None-Match" in headers[2]
    assert driver.get_content("large") == bytes(s3small.SMALL_MOST + 1)


def test_a_missing_bucket_is_botocores_error_as_before(s3_endpoint: S3Endpoint) -> None:
    driver = make_driver(s3_endpoint, bucket="no-such-bucket-here")
    with pytest.raises(ClientError) as missing:
        driver.get_content("a/b")
    assert missing.value.response["Error"]["Code"] == "NoSuchBucket"


# Configurations whose URL botocore builds in different ways: virtual-hosted in a region, path
# style, a dotted bucket name, no region, a custom endpoint, R2's "auto" region, a root
# directory that needs quoting.
_CONFIGURATIONS = [
    {"region": "us-east-1"},
    {"region": "eu-west-1"},
    {"region": "ap-east-1"},
    {"region": "eu-west-1", "forcepathstyle": True},
    {"region": "eu-west-1", "forcepathstyle": False},
    {"region": "eu-west-1", "bucket": "b.k.t"},
    {"region": None},
    {"region": "us-east-1", "regionendpoint": "http://127.0.0.1:9", "secure": False},
    {"region": "auto", "regionendpoint": "https://acct.r2.cloudflarestorage.com"},
    {"region": "eu-west-1", "rootdirectory": "/my root/p+q~%/"},
]


@pytest.mark.parametrize("configuration", _CONFIGURATIONS, ids=str)
def test_requests_by_hand_go_where_botocores_go_and_are_signed_for_its_region(
    configuration: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = {"bucket": "bkt", "accesskey": "AK", "secretkey": "SK", **configuration}
    driver = S3Driver(**settings)
    sent: list[tuple[str, str]] = []

    def answer(request: Any, **_: object) -> AWSResponse:
        authorization = request.headers["Authorization"]
        if isinstance(authorization, bytes):
            authorization = authorization.decode()
        credential = authorization.split("Credential=")[1].split(",")[0]
        sent.append((request.url, credential.split("/", 2)[2]))
        body = b"" if request.method == "PUT" else b"{}"
        return AWSResponse(request.url, 200, {"Content-Length": str(len(body))}, _Body(body))

    driver.client.meta.events.register("before-send.s3", answer)
    key = driver.key("a b/\u00fc+~%=&;,@:$!'()*/x")
    assert driver._small is not None
    driver._small.get(key)
    driver.client.get_object(Bucket=driver.bucket, Key=key)
    driver._small.put(key, b"xy", {})
    driver.client.put_object(Bucket=driver.bucket, Key=key, Body=b"xy")
    by_hand = [sent[0], sent[2]]
    assert by_hand == [sent[1], sent[3]]  # the same URL, the same signing scope


def test_nothing_is_resolved_before_the_first_request(s3_endpoint: S3Endpoint) -> None:
    asked: list[str] = []
    driver = make_driver(s3_endpoint)
    small = driver._small
    assert small is not None
    getter = small._get_credentials
    small._get_credentials = lambda: asked.append("credentials") or getter()
    assert asked == []
    driver.put_content("a/b", b"content")
    assert driver.get_content("a/b") == b"content"
    assert asked == ["credentials"]
