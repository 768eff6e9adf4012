from __future__ import annotations

import hashlib
import tracemalloc
from typing import Any

import httpx
import pytest

from ocireg.storage.driver import StorageDriver
from ocireg.storage.s3 import MIN_PART, S3Driver, _S3Writer
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Endpoint, s3_endpoint
from tests.storage.driver_suite import DriverSuite

__all__ = ["s3_endpoint"]  # the session fixture, used here by name


def make_driver(endpoint: S3Endpoint, bucket: str | None = None, **extra: object) -> S3Driver:
    return S3Driver(
        bucket=bucket or endpoint.new_bucket(),
        region=REGION,
        regionendpoint=endpoint.url,
        secure=False,
        accesskey=ACCESS_KEY,
        secretkey=SECRET_KEY,
        **extra,  # type: ignore[arg-type]
    )


class TestS3Driver(DriverSuite):
    @pytest.fixture(params=["", "some/prefix"], ids=["bucket-root", "rootdirectory"])
    def driver(self, s3_endpoint: S3Endpoint, request: pytest.FixtureRequest) -> StorageDriver:
        return make_driver(s3_endpoint, rootdirectory=request.param)


@pytest.fixture
def driver(s3_endpoint: S3Endpoint) -> S3Driver:
    return make_driver(s3_endpoint, chunksize=MIN_PART)


def _blob(size: int, seed: bytes) -> bytes:
    out = bytearray()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed * 64
    return bytes(out[:size])


def test_appends_past_a_part_continue_on_another_instance(
    driver: S3Driver, s3_endpoint: S3Endpoint
) -> None:
    first, second, third = _blob(6 << 20, b"1"), _blob(3 << 20, b"2"), _blob(12 << 20, b"3")
    driver.put_content("up", b"")
    with driver.writer("up", append=True) as writer:
        writer.write(first)
        writer.commit()
    # another instance: nothing of the upload is kept in the first one's memory
    other = make_driver(s3_endpoint, bucket=driver.bucket, chunksize=MIN_PART)
    for part in (second, third):
        writer = other.writer("up", append=True)
        assert writer.size == other.stat("up").size
        writer.write(part)
        writer.commit()
    with driver.reader("up", 1) as handle:
        assert handle.read() == (first + second + third)[1:]
    cancelled = driver.writer("up", append=True)
    cancelled.write(b"more")
    cancelled.cancel()
    assert driver.stat("up").size == len(first + second + third)
    assert driver.client.list_multipart_uploads(Bucket=driver.bucket).get("Uploads", []) == []


def test_large_copies_are_multipart(driver: S3Driver) -> None:
    driver.copy_threshold, driver.copy_part_size = 6 << 20, MIN_PART
    data = _blob(12 << 20, b"copy")
    driver.put_content("a/src", data)
    driver.move("a/src", "b/dst")
    driver.link("b/dst", "c/dst")
    driver.touch("c/dst")
    assert driver.get_content("b/dst") == data
    assert driver.get_content("c/dst") == data
    assert not driver.exists("a/src")


def test_files_live_under_rootdirectory(s3_endpoint: S3Endpoint) -> None:
    driver = make_driver(s3_endpoint, rootdirectory="/zot/")
    driver.put_content("repo/index.json", b"{}")
    listed = driver.client.list_objects_v2(Bucket=driver.bucket)["Contents"]
    assert [entry["Key"] for entry in listed] == ["zot/repo/index.json"]
    assert driver.list("") == ["repo"]


def test_sweep_aborts_only_old_multipart_uploads(driver: S3Driver) -> None:
    writer = driver.writer("orphan")
    writer.write(_blob(MIN_PART + 1, b"o"))  # one part sent: a multipart upload is open
    # moto reports every upload as begun in 2010, so "not old yet" is told apart by a bound
    # beyond that date here; S3 itself reports the real time
    assert driver.sweep_temporary(100 * 365 * 86400) == 0
    assert driver.sweep_temporary(-1) == 1
    assert driver.client.list_multipart_uploads(Bucket=driver.bucket).get("Uploads", []) == []
    assert not driver.exists("orphan")


def test_presigned_redirect(s3_endpoint: S3Endpoint) -> None:
    plain = make_driver(s3_endpoint)
    plain.put_content("blob", b"content")
    assert plain.redirect_url("blob", "GET") is None
    redirecting = make_driver(s3_endpoint, bucket=plain.bucket, redirect=True)
    url = redirecting.redirect_url("blob", "GET")
    assert url is not None and "Signature" in url
    assert httpx.get(url).content == b"content"
    assert redirecting.redirect_url("blob", "PUT") is None


def test_chunksize_below_s3_minimum_is_refused(s3_endpoint: S3Endpoint) -> None:
    with pytest.raises(ValueError, match="smallest part"):
        make_driver(s3_endpoint, bucket="unused", chunksize=MIN_PART - 1)


class _PartsKept:
    """Stands in for the driver's S3 calls: the writer's own copies are what is measured."""

    part_size = MIN_PART

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def key(self, path: str) -> str:
        return path

    def begin_multipart(self, key: str) -> str:
        return "upload"

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, object]:
        self.parts.append(data)
        return {"PartNumber": number}

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self.parts.clear()


def test_a_part_is_copied_out_of_the_buffer_once() -> None:
    driver = _PartsKept()
    writer = _S3Writer(driver, "up", append=False)  # type: ignore[arg-type]
    data = _blob(MIN_PART + 1, b"p")
    tracemalloc.start()
    try:
        writer.write(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert driver.parts == [data[:MIN_PART]]
    # the buffer and the part sent; a second copy would make it three parts
    assert peak < 2.5 * MIN_PART
    writer.cancel()
    assert driver.parts == []


class _Body:
    """An HTTP answer's body, as botocore's ``AWSResponse`` reads it."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self) -> list[bytes]:
        return [self.data]


def test_an_endpoint_refusing_conditional_writes_is_asked_first_instead(
    driver: S3Driver,
) -> None:
    """The endpoint answers a conditional PutObject 501 NotImplemented (as stores without
    conditional writes do), whichever path sends it: the small requests' or botocore's."""
    from botocore.awsrequest import AWSResponse

    conditional: list[str] = []
    refusal = b"<Error><Code>NotImplemented</Code><Message>no</Message></Error>"

    def refusing(request: Any, **_: object) -> AWSResponse | None:
        if "If-None-Match" not in request.headers:
            return None  # sent as usual
        conditional.append(request.url.rsplit("/", 2)[-2] + "/" + request.url.rsplit("/", 1)[-1])
        return AWSResponse(request.url, 501, {}, _Body(refusal))

    driver.client.meta.events.register("before-send.s3.PutObject", refusing)
    assert driver.put_new_content("c/one", b"1")
    assert not driver.put_new_content("c/one", b"1")
    assert driver.put_new_content("c/two", b"2")
    assert driver.get_content("c/one") == b"1" and driver.get_content("c/two") == b"2"
    # refused once (by the small request, then by botocore): not asked so again
    assert conditional == ["c/one", "c/one"]


def test_a_reader_reads_into_buffers_straight_from_the_response(driver: S3Driver) -> None:
    data = _blob((2 << 20) + 123, b"into")
    driver.put_content("big", data)
    with driver.reader("big", 5) as handle:
        assert handle._socket_fp is not None  # type: ignore[attr-defined]
        buffer, out = bytearray(1 << 20), bytearray()
        while got := handle.readinto(buffer):  # type: ignore[attr-defined]
            out += buffer[:got]
            if len(out) > (1 << 20):  # a read after readinto goes on where it stopped
                out += handle.read()
    assert out == data[5:]
    raw = handle._raw  # type: ignore[attr-defined]
    assert raw._connection is None  # read to its end: given back to the pool, not closed


def test_a_reader_closed_midway_closes_its_response(driver: S3Driver) -> None:
    driver.put_content("big", _blob(3 << 20, b"half"))
    handle = driver.reader("big")
    assert handle.readinto(bytearray(1000)) == 1000  # type: ignore[attr-defined]
    raw = handle._raw  # type: ignore[attr-defined]
    handle.close()
    assert raw.closed
    assert raw._connection is not None and raw._connection.sock is None  # not reused half-read
