"""S3 driver: the storage tree as objects in one bucket, under an optional key prefix.

A path ``a/b`` is the object ``<rootdirectory>/a/b``; a "directory" is a key prefix, so it
exists while something is under it and is gone with its last object (no marker objects).

Writes:

- a new file is one ``PutObject`` when it fits in one part, otherwise a multipart upload whose
  parts are sent as they fill (``chunksize`` bytes each), so memory stays at one part whatever
  the size; nothing is visible before ``CompleteMultipartUpload`` and ``cancel`` aborts it;
- an append (an upload session's next chunk) writes the whole file again as a new multipart
  upload whose first parts are *server-side copies* of the current object (``UploadPartCopy``),
  then the new bytes; completing it replaces the object at once. The bytes already stored never
  travel through this process, everything is in the bucket between requests, and so an upload
  begun on one instance is continued, finished or cancelled on another. A current object under
  S3's 5 MiB minimum part is read back and re-sent instead (it is small).
- ``move``, ``link`` and ``touch`` are server-side copies (multipart above 5 GiB).

Modification times are kept in the object's metadata (``x-amz-meta-ocireg-mtime``, sub-second)
because ``Last-Modified`` has whole seconds; objects written by others fall back to it.

Client library: botocore (through boto3), measured against obstore and aiobotocore by
``bench/s3_clients.py`` (figures in ``docs/dependencies.md``). On the moto endpoint the put and
get rates of the three are within each other's noise, because the endpoint is the limit;
obstore puts faster only by sending several parts at once, which holds several parts in
memory. What differs is this process's CPU per GiB read: botocore 0.47 s, obstore 0.85 s
(1.4 s behind a file-like wrapper), and the registry shares two cores with everything else.
botocore also has every call this design needs (``UploadPartCopy``, multipart uploads named
and aborted by us, metadata on copies, listing multipart uploads, presigning), and it is
synchronous, as the driver interface is (called from worker threads; aiobotocore would need
an event loop per call).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, IncompleteReadError
from botocore.hooks import first_non_none_response

from ocireg.storage.driver import (
    FileInfo,
    FileWriter,
    InvalidOffsetError,
    InvalidPathError,
    PathNotFoundError,
    StorageDriver,
    check_path,
)
from ocireg.storage.s3small import FALL_BACK, SMALL_MOST, SmallRequests
from ocireg.storage.socketbody import SocketBody, open_body, plain_http

log = logging.getLogger("ocireg.storage.s3")

MIN_PART = 5 << 20  # S3's smallest part but the last
MAX_COPY = 5 << 30  # the largest object one CopyObject (or one UploadPartCopy) may copy
DEFAULT_PART = 10 << 20  # distribution's default chunksize
MTIME = "ocireg-mtime"
CONNECT_TIMEOUT = 10
# Seconds a request waits for the next byte of its answer. Most answers need no work in
# proportion to an object's size (a HEAD, a GET's head and body, a small PUT, a listing, a
# DELETE): S3 silent for QUICK_READ_TIMEOUT is a stall (a pooled connection a middlebox
# dropped, an endpoint hung), and the request is retried on a fresh connection (botocore's
# retries) or fails, instead of holding its thread, or the event loop, for minutes. The
# requests whose answer may come minutes later (a copy, a multipart completion, a bulk
# delete, the answer to a large body) wait READ_TIMEOUT, on a client of their own
# (``S3Driver._patient``).
QUICK_READ_TIMEOUT: float = 30
READ_TIMEOUT = 300  # completing or copying a large object may take minutes before the answer
# A relayed body's wait for its next byte (``socketbody``, ``relay``): S3 silent this long
# ends the pull. The same as any answer's body read through botocore (the main client's): S3
# sends a body as it reads the object, and the wait counts only while the pull waits for S3,
# not its client.
BODY_READ_TIMEOUT: float = QUICK_READ_TIMEOUT
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
# What an endpoint without conditional writes answers If-None-Match with
_NO_CONDITIONAL = frozenset({"NotImplemented", "501", "InvalidArgument", "InvalidRequest"})


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code"))


def endpoint_url(regionendpoint: str | None, secure: bool) -> str | None:
    """zot's ``regionendpoint`` may omit the scheme; ``secure`` then picks it."""
    if not regionendpoint:
        return None
    if "://" in regionendpoint:
        return regionendpoint
    return f"{'https' if secure else 'http'}://{regionendpoint}"


class _ObjectStream(io.RawIOBase):
    """A GetObject body as a binary stream, read as it arrives (never whole). ``read`` hands
    out the body's own bytes, with no buffer layer copying them once more; ``readinto`` reads
    straight from the response's socket into the caller's buffer (``http.client``'s own
    ``readinto``), past urllib3's ``read``, which copies each piece once or twice."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._raw: Any = getattr(body, "_raw_stream", None)  # botocore's StreamingBody: urllib3's
        self._socket_fp = _unbuffered_fp(self._raw)
        self._expected: int | None = getattr(body, "_content_length", None)
        self._read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        whole = size is None or size < 0
        if self._socket_fp is None or not self._read:  # botocore's read from then on
            self._socket_fp = None
            return cast(bytes, self._body.read(None if whole else size))
        data = cast(bytes, self._socket_fp.read(None if whole else size))
        self._counted(len(data), whole or size != 0)
        return data

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._socket_fp is None:
            data = self.read(len(view))
            view[: len(data)] = data
            return len(data)
        got = cast(int, self._socket_fp.readinto(view)) if len(view) else 0
        self._counted(got, len(view) > 0)
        return got

    def _counted(self, got: int, asked: bool) -> None:
        """Count what arrived; nothing more to an asking read before the promised length is
        a broken body (as botocore's ``StreamingBody`` says)."""
        self._read += got
        if got == 0 and asked and self._expected is not None and self._read < self._expected:
            raise IncompleteReadError(actual_bytes=self._read, expected_bytes=self._expected)

    def close(self) -> None:
        if self.closed:
            return
        fp = self._socket_fp
        if fp is not None and fp.isclosed():  # read to its end: the connection is reusable
            self._raw.release_conn()
        else:
            self._body.close()
        super().close()


def _unbuffered_fp(raw: Any) -> Any:
    """The ``http.client`` response under a urllib3 response, when reading it directly gives
    the same bytes: nothing buffered or decoded in urllib3 yet, no content coding."""
    fp = getattr(raw, "_fp", None)
    if fp is None or not hasattr(fp, "readinto") or not hasattr(raw, "release_conn"):
        return None
    if len(getattr(raw, "_decoded_buffer", ())) or getattr(raw, "_fp_bytes_read", 1):
        return None
    coding = raw.headers.get("content-encoding", "identity").strip().lower()
    return fp if coding in ("", "identity") else None


class _S3Writer(FileWriter):
    def __init__(self, driver: S3Driver, path: str, append: bool) -> None:
        self._driver = driver
        self._key = driver.key(path)
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._closed = False
        self._copied = 0  # bytes of the current object not yet copied into parts
        self._start = 0
        if append:
            self._start = self._current_size(path)
            if self._start >= MIN_PART:
                self._copied = self._start
            elif self._start:
                self._buffer += driver.get_content(path)
        self._written = 0

    def _current_size(self, path: str) -> int:
        try:
            return self._driver.stat(path).size
        except PathNotFoundError:
            return 0  # an append to nothing starts the file, as on disk

    @property
    def size(self) -> int:
        return self._start + self._written

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed writer")
        self._buffer += data
        self._written += len(data)
        while len(self._buffer) >= self._driver.part_size:
            self._send_part(self._take(self._driver.part_size))
        return len(data)

    def _take(self, size: int) -> bytes:
        """The buffer's first ``size`` bytes, copied once: a slice of the bytearray would be
        one copy and ``bytes`` of it a second, 10 MiB more at the peak of every upload."""
        with memoryview(self._buffer) as view:
            part = bytes(view[:size])
        del self._buffer[:size]  # after the view is released: a resize with one raises
        return part

    def _begin(self) -> str:
        if self._upload_id is None:
            self._upload_id = self._driver.begin_multipart(self._key)
            # the current object comes first, copied in the bucket
            for first, last in _even_ranges(self._copied, MAX_COPY):
                self._parts.append(
                    self._driver.copy_part(
                        self._key, self._key, self._upload_id, first, last, len(self._parts) + 1
                    )
                )
        return self._upload_id

    def _send_part(self, data: bytes) -> None:
        upload_id = self._begin()
        self._parts.append(
            self._driver.upload_part(self._key, upload_id, len(self._parts) + 1, data)
        )

    def commit(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._upload_id is None and not self._copied:
                self._driver.put_object(self._key, bytes(self._buffer))
            elif self._upload_id is None and not self._written:
                return  # an append of nothing: the object is as it was
            else:
                if self._buffer or self._upload_id is None:
                    self._send_part(bytes(self._buffer))
                assert self._upload_id is not None
                self._driver.complete_multipart(self._key, self._upload_id, self._parts)
        except BaseException:
            self._abort()
            raise
        finally:
            self._buffer = bytearray()

    def cancel(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer = bytearray()
        self._abort()

    def _abort(self) -> None:
        if self._upload_id is not None:
            self._driver.abort_multipart(self._key, self._upload_id)
            self._upload_id = None


def _even_ranges(size: int, most: int) -> Iterator[tuple[int, int]]:
    """Ranges of near-equal length, ``most`` bytes at most: the parts before the last must
    each reach S3's minimum, which an uneven split's short remainder might not."""
    count = -(-size // most)
    yield from _ranges(size, -(-size // count) if count else most)


def _ranges(size: int, step: int) -> Iterator[tuple[int, int]]:
    """Inclusive byte ranges covering ``size`` bytes, ``step`` at most each."""
    for first in range(0, size, step):
        yield first, min(first + step, size) - 1


class S3Driver(StorageDriver):
    name = "s3"
    move_renews_mtime = True  # a move is a copy with fresh metadata
    blob_check_is_request = True  # a HEAD
    copy_threshold = MAX_COPY  # above it a copy is a multipart copy (tests lower both)
    copy_part_size = 1 << 30

    def __init__(
        self,
        bucket: str,
        region: str | None = None,
        regionendpoint: str | None = None,
        rootdirectory: str = "",
        secure: bool = True,
        skipverify: bool = False,
        accesskey: str | None = None,
        secretkey: str | None = None,
        sessiontoken: str | None = None,
        forcepathstyle: bool | None = None,
        chunksize: int = DEFAULT_PART,
        redirect: bool = False,
        redirect_expiry: float = 1200.0,
    ) -> None:
        if chunksize < MIN_PART:
            raise ValueError(f"chunksize {chunksize} is below S3's smallest part ({MIN_PART})")
        self.bucket = bucket
        self.prefix = rootdirectory.strip("/")
        self.part_size = chunksize
        self.redirect = redirect
        self.redirect_expiry = redirect_expiry
        self._conditional_put = True  # see put_new_content
        style = {None: "auto", True: "path", False: "virtual"}[forcepathstyle]
        session = boto3.session.Session(
            aws_access_key_id=accesskey or None,
            aws_secret_access_key=secretkey or None,
            aws_session_token=sessiontoken or None,
            region_name=region or None,
        )

        def client(read_timeout: float) -> Any:
            return session.client(
                "s3",
                endpoint_url=endpoint_url(regionendpoint, secure),
                use_ssl=secure,
                verify=not skipverify,
                config=BotoConfig(
                    s3={"addressing_style": style},
                    max_pool_connections=64,
                    connect_timeout=CONNECT_TIMEOUT,
                    read_timeout=read_timeout,
                    retries={"max_attempts": 3, "mode": "standard"},
                ),
            )

        self.client: Any = client(QUICK_READ_TIMEOUT)
        self._patient_client: Any = None  # made at its first use (see _patient)
        self._make_patient: Callable[[], Any] = lambda: client(READ_TIMEOUT)
        self._patient_lock = threading.Lock()
        # small requests by hand, botocore for the rest and for every unexpected answer
        # (credentials and the bucket's endpoint are resolved at the first request)
        self._small = SmallRequests.for_client(self.client, session.get_credentials, bucket)

    @property
    def _patient(self) -> Any:
        """The client of the requests whose answer may come minutes after they are sent (see
        ``QUICK_READ_TIMEOUT``), made at its first use: a registry that only serves pulls
        never pays for it."""
        if self._patient_client is None:
            with self._patient_lock:
                if self._patient_client is None:
                    patient = self._make_patient()
                    # its requests go through ``client``'s before-send event too: what counts
                    # or stubs the driver's requests there sees every one of them (that
                    # event only: a botocore Stubber on ``client`` does not see them)
                    patient.meta.events.register("before-send.s3", self._forward_before_send)
                    self._patient_client = patient
        return self._patient_client

    def _forward_before_send(self, event_name: str, **kwargs: Any) -> Any:
        answers = self.client.meta.events.emit(event_name, **kwargs)
        return first_non_none_response(answers)

    # keys ------------------------------------------------------------------------------

    def key(self, path: str) -> str:
        check_path(path)
        if not path:
            return self.prefix
        return f"{self.prefix}/{path}" if self.prefix else path

    def _dir_prefix(self, path: str) -> str:
        key = self.key(path)
        return f"{key}/" if key else ""

    def _path(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    # primitives used by the writer --------------------------------------------------------

    def _meta(self) -> dict[str, str]:
        return {MTIME: repr(time.time())}

    def put_object(self, key: str, data: bytes) -> None:
        meta = self._meta()
        if self._small is not None and self._small.put(key, data, meta) is not FALL_BACK:
            return
        self._for_body(data).put_object(Bucket=self.bucket, Key=key, Body=data, Metadata=meta)

    def _for_body(self, data: bytes) -> Any:
        """The client to send ``data`` with: S3 may answer a large body only once it has
        stored it."""
        return self._patient if len(data) > SMALL_MOST else self.client

    def put_new_content(self, path: str, data: bytes) -> bool:
        # One conditional PutObject (If-None-Match: *, honoured by AWS S3 since August 2024,
        # and by moto) instead of a HeadObject and a PutObject. An endpoint that
        # refuses the condition is asked the two ways from then on. One that ignores it
        # writes the same bytes again (a digest names them) and renews the modification
        # time, which only delays GC of the file, and callers reference it at once.
        if not path:
            raise InvalidPathError(path)
        if not self._conditional_put:
            return super().put_new_content(path, data)
        key, body, meta = self.key(path), bytes(data), self._meta()
        if self._small is not None:
            wrote = self._small.put(key, body, meta, if_none_match=True)
            if wrote is not FALL_BACK:
                return bool(wrote)
        try:
            self._for_body(body).put_object(
                Bucket=self.bucket, Key=key, Body=body, Metadata=meta, IfNoneMatch="*"
            )
        except ClientError as error:
            code = _code(error)
            if code in ("PreconditionFailed", "412"):
                return False  # there already
            if code in ("ConditionalRequestConflict", "409"):  # another write in flight
                return super().put_new_content(path, data)
            if code not in _NO_CONDITIONAL:
                raise
            log.info("s3://%s refuses conditional writes (%s): checking first", self.bucket, code)
            self._conditional_put = False
            return super().put_new_content(path, data)
        return True

    def begin_multipart(self, key: str) -> str:
        answer = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, Metadata=self._meta()
        )
        return str(answer["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        answer = self._patient.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def copy_part(
        self, source: str, key: str, upload_id: str, first: int, last: int, number: int
    ) -> dict[str, Any]:
        answer = self._patient.upload_part_copy(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            CopySource={"Bucket": self.bucket, "Key": source},
            CopySourceRange=f"bytes={first}-{last}",
        )
        return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}

    def complete_multipart(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        self._patient.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as error:  # already gone: nothing to undo
            log.warning("cannot abort multipart upload of %s: %s", key, error)

    def _head(self, path: str) -> dict[str, Any] | None:
        if self._small is not None:
            head = self._small.head(self.key(path))
            if head is not FALL_BACK:
                return cast(dict[str, Any] | None, head)
        try:
            return cast(
                dict[str, Any], self.client.head_object(Bucket=self.bucket, Key=self.key(path))
            )
        except ClientError as error:
            if _missing(error):
                return None
            raise

    def _copy(self, source: str, dest: str, size: int) -> None:
        """Copy within the bucket (onto itself too: that renews the modification time)."""
        src, dst = self.key(source), self.key(dest)
        if size <= self.copy_threshold:
            self._patient.copy_object(
                Bucket=self.bucket,
                Key=dst,
                CopySource={"Bucket": self.bucket, "Key": src},
                Metadata=self._meta(),
                MetadataDirective="REPLACE",
            )
            return
        upload_id = self.begin_multipart(dst)
        try:
            parts = [
                self.copy_part(src, dst, upload_id, first, last, number)
                for number, (first, last) in enumerate(_ranges(size, self.copy_part_size), 1)
            ]
            self.complete_multipart(dst, upload_id, parts)
        except BaseException:
            self.abort_multipart(dst, upload_id)
            raise

    def _keys_under(self, path: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._dir_prefix(path)
        )
        for page in pages:
            yield from page.get("Contents", [])

    # the driver interface -----------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        if self._small is not None:
            data = self._small.get(self.key(path))
            if data is None:
                raise PathNotFoundError(path)
            if data is not FALL_BACK:
                return cast(bytes, data)
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key(path))
        except ClientError as error:
            if _missing(error):
                raise PathNotFoundError(path) from None
            raise
        return cast(bytes, answer["Body"].read())

    def put_content(self, path: str, data: bytes) -> None:
        if not path:
            raise InvalidPathError(path)
        self.put_object(self.key(path), bytes(data))

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        key = self.key(path)
        if offset < 0:
            self.stat(path)  # a missing file is "not found" first
            raise InvalidOffsetError(path, offset)
        if self._small is not None:
            body = self._small.stream(key, offset)
            if body is None:
                raise PathNotFoundError(path)
            if body is not FALL_BACK:
                return cast(BinaryIO, _ObjectStream(body))
        extra = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as error:
            if _missing(error):
                raise PathNotFoundError(path) from None
            if _code(error) != "InvalidRange":
                raise
            if offset != self.stat(path).size:
                raise InvalidOffsetError(path, offset) from None
            return io.BytesIO(b"")  # at the very end: nothing left to read
        return cast(BinaryIO, _ObjectStream(answer["Body"]))

    def socket_body(self, path: str, offset: int, length: int) -> SocketBody | None:
        # Only on a plain-HTTP endpoint (the relay reads the socket itself: TLS would need
        # botocore's layers back), and only when the hand-signed path is on; every other
        # answer (an error, a redirect, a coded body) is None, and the caller's reader() asks
        # again through the usual path.
        if self._small is None or length <= 0:
            return None
        signed = self._small.signed_get(self.key(path), offset, length)
        if signed is None or not plain_http(signed[0]):
            return None
        url, headers = signed
        try:
            body = open_body(url, headers, length, CONNECT_TIMEOUT, BODY_READ_TIMEOUT)
        except OSError as error:  # the usual path retries, and raises what botocore raises
            log.debug("s3 GetObject %s on a socket of its own: %s", path, error)
            return None
        if isinstance(body, int):  # a refusal counts as the other hand-made requests' do
            self._small.answered(body, "GetObject")
            return None
        return body

    def writer(self, path: str, append: bool = False) -> FileWriter:
        if not path:
            raise InvalidPathError(path)
        return _S3Writer(self, path, append)

    def stat(self, path: str) -> FileInfo:
        if not path:
            check_path(path)
            return FileInfo(path, 0, time.time(), True)
        head = self._head(path)
        if head is not None:
            return FileInfo(path, int(head["ContentLength"]), _mtime(head), False)
        listed = self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=self._dir_prefix(path), MaxKeys=1
        )
        if listed.get("KeyCount", 0):
            return FileInfo(path, 0, time.time(), True)
        raise PathNotFoundError(path)

    def list(self, path: str) -> list[str]:
        prefix = self._dir_prefix(path)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        )
        children: set[str] = set()
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                children.add(self._path(common["Prefix"].rstrip("/")))
            for entry in page.get("Contents", []):
                if not entry["Key"].endswith("/"):  # folder markers other tools leave
                    children.add(self._path(entry["Key"]))
        if not children and path:
            raise PathNotFoundError(path)
        return sorted(children)

    def move(self, source: str, dest: str) -> None:
        check_path(dest)
        info = self._file(source)
        self._copy(source, dest, info.size)
        self.client.delete_object(Bucket=self.bucket, Key=self.key(source))

    def delete(self, path: str) -> None:
        doomed = [entry["Key"] for entry in self._keys_under(path)] if path else []
        if self._head(path) is not None:
            doomed.append(self.key(path))
        if not doomed:
            raise PathNotFoundError(path)
        for start in range(0, len(doomed), 1000):  # DeleteObjects takes 1000 at most
            batch = [{"Key": key} for key in doomed[start : start + 1000]]
            # a thousand deletes: some endpoints take their time over them
            self._patient.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )

    def _file(self, path: str) -> FileInfo:
        head = self._head(path)
        if head is None:
            raise PathNotFoundError(path)
        return FileInfo(path, int(head["ContentLength"]), _mtime(head), False)

    def link(self, source: str, dest: str) -> None:
        check_path(dest)
        self._copy(source, dest, self._file(source).size)

    def touch(self, path: str) -> None:
        self._copy(path, path, self._file(path).size)

    def redirect_url(self, path: str, method: str) -> str | None:
        if not self.redirect or method not in ("GET", "HEAD"):
            return None
        operation = "get_object" if method == "GET" else "head_object"
        return cast(
            str,
            self.client.generate_presigned_url(
                operation,
                Params={"Bucket": self.bucket, "Key": self.key(path)},
                ExpiresIn=int(self.redirect_expiry),
            ),
        )

    def sweep_temporary(self, max_age: float) -> int:
        """Abort multipart uploads under the root older than ``max_age``: writers that died
        (a live writer sends its parts and completes within one request). moto reports
        every upload as begun in 2010, so against moto every open upload is old."""
        now, removed = time.time(), 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self._dir_prefix("")
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                if now - upload["Initiated"].timestamp() > max_age:
                    self.abort_multipart(upload["Key"], upload["UploadId"])
                    removed += 1
        if removed:
            log.info("aborted %d orphaned multipart uploads in s3://%s", removed, self.bucket)
        return removed

    def check_bucket(self) -> str | None:
        """Why the bucket cannot be used, or None (asked before anything listens)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            code = _code(error)
            if code in ("404", "NoSuchBucket", "NotFound"):
                return "no such bucket"
            if code in ("403", "AccessDenied"):
                return "access denied (check the credentials)"
            return str(error)
        except Exception as error:  # unreachable endpoint, no credentials, bad TLS, ...
            return str(error)
        return None


def _mtime(head: dict[str, Any]) -> float:
    stored = head.get("Metadata", {}).get(MTIME)
    if stored is not None:
        try:
            return float(stored)
        except ValueError:
            pass
    modified = head.get("LastModified")
    return modified.timestamp() if isinstance(modified, datetime) else datetime.now(UTC).timestamp()
