"""The S3 driver's small requests (HeadObject, a whole GetObject, PutObject), without botocore's
per-call machinery.

Why: a manifest push is a few small requests (the index read and write, the manifest's own
write, a blob's existence check), and botocore spends 4-5 ms of CPU on each one (measured in
``bench/S3.md``): its event hooks, parameter validation, the endpoint ruleset, the request
serialiser and the response parser, the User-Agent built per call. A registry on two shared
cores pays that CPU on every push. This path builds the same request by hand: the URL from the
bucket's base URL (resolved once by botocore, through a presigned URL), botocore's own SigV4
signer (``S3SigV4Auth``) with the session's credentials (refreshed as botocore refreshes them),
and the client's own HTTP session (its connection pool, TLS and proxy settings, timeouts).

Only the outcomes a caller expects are answered here: success, a missing object (HEAD 404,
GET ``NoSuchKey``) and a failed ``If-None-Match`` (412). Anything else, an error answer, a
connection error, a redirect, returns :data:`FALL_BACK`, and the caller makes the same call
through botocore, which then retries, follows region redirects, and raises exactly the errors
it always raised. A request repeated that way is safe: HEAD and GET change nothing, a PutObject
writes the same bytes under the same key (a digest or the index's whole content), and a
conditional one that had been stored answers 412 the second time, which reads as "there
already": the object is the one we wrote. An answer that is neither success nor a server-side
or connection failure (a 301 to another region, a 403) turns this path off for the driver, so
a misconfigured client does not pay two requests per call.

The requests still go through the client's ``before-send`` event, so what counts or stubs the
client's requests sees these too.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, cast
from urllib.parse import quote
from xml.etree import ElementTree

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.exceptions import BotoCoreError
from botocore.hooks import first_non_none_response
from botocore.response import StreamingBody

log = logging.getLogger("ocireg.storage.s3")


class _FallBack:
    """Answered when botocore must make the call (see the module docstring)."""


FALL_BACK: Final = _FallBack()
_META = "x-amz-meta-"
_RETRYABLE = frozenset({500, 502, 503, 504})  # botocore retries them: no reason to turn off


class SmallRequests:
    """Signed small requests for one bucket of a botocore S3 client."""

    def __init__(self, client: Any, credentials: Any, bucket: str) -> None:
        self._client = client
        self._credentials = credentials
        self._region = client.meta.region_name or "us-east-1"
        self._session = client._endpoint.http_session  # the client's pool, TLS and timeouts
        self._events = client.meta.events
        presigned = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60
        )
        self._base = presigned.split("?", 1)[0][: -len("k")]  # ends with "/"
        self.enabled = True

    @classmethod
    def for_client(cls, client: Any, credentials: Any, bucket: str) -> SmallRequests | None:
        """None where this path cannot sign as botocore would (no credentials: botocore's
        own errors then say so; a client without the HTTP session this path uses)."""
        if credentials is None or not hasattr(client, "_endpoint"):
            return None
        try:
            return cls(client, credentials, bucket)
        except (BotoCoreError, AttributeError, ValueError) as error:
            log.info("s3 small requests go through botocore: %s", error)
            return None

    def head(self, key: str) -> dict[str, Any] | _FallBack | None:
        """HeadObject's answer (ContentLength, Metadata, LastModified), None when missing."""
        answer = self._send("HEAD", key, "HeadObject")
        if isinstance(answer, _FallBack):
            return answer
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            return self._unexpected(answer.status_code, "HeadObject")
        headers = answer.headers
        metadata = {
            name[len(_META) :]: value
            for name, value in headers.items()
            if name.lower().startswith(_META)
        }
        return {
            "ContentLength": int(headers.get("Content-Length", 0)),
            "Metadata": metadata,
            "LastModified": _last_modified(headers.get("Last-Modified")),
        }

    def get(self, key: str) -> bytes | _FallBack | None:
        """The object's bytes, None when it is missing (``NoSuchKey``)."""
        answer = self._send("GET", key, "GetObject")
        if isinstance(answer, _FallBack):
            return answer
        if answer.status_code == 200:
            return bytes(answer.content)
        if answer.status_code == 404 and _error_code(answer.content) == "NoSuchKey":
            return None
        return self._unexpected(answer.status_code, "GetObject")

    def stream(self, key: str, offset: int) -> Any:
        """The object's body from ``offset`` as botocore's ``StreamingBody`` (which checks
        that every byte the length promised arrived), None when it is missing."""
        headers = {"Range": f"bytes={offset}-"} if offset else None
        answer = self._send("GET", key, "GetObject", headers, stream=True)
        if isinstance(answer, _FallBack):
            return answer
        if answer.status_code in (200, 206):
            length = answer.headers.get("Content-Length")
            return StreamingBody(answer.raw, int(length) if length is not None else None)
        code = _error_code(answer.content)  # read whole: the connection goes back to the pool
        if answer.status_code == 404 and code == "NoSuchKey":
            return None
        if answer.status_code == 416:
            return FALL_BACK  # botocore's path tells the end of the object from beyond it
        return self._unexpected(answer.status_code, "GetObject")

    def put(
        self, key: str, data: bytes, metadata: dict[str, str], if_none_match: bool = False
    ) -> bool | _FallBack:
        """PutObject; with ``if_none_match`` only when nothing is there (False if something
        is: 412)."""
        headers = {f"{_META}{name}": value for name, value in metadata.items()}
        if if_none_match:
            headers["If-None-Match"] = "*"
        answer = self._send("PUT", key, "PutObject", headers, data)
        if isinstance(answer, _FallBack):
            return answer
        if answer.status_code == 200:
            return True
        if if_none_match and answer.status_code == 412:
            return False
        if if_none_match:  # an endpoint may refuse the condition alone: the driver decides
            return FALL_BACK
        return self._unexpected(answer.status_code, "PutObject")

    def _send(
        self,
        method: str,
        key: str,
        operation: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        stream: bool = False,
    ) -> AWSResponse | _FallBack:
        if not self.enabled:
            return FALL_BACK
        request = AWSRequest(
            method=method,
            url=self._base + quote(key, safe="/~"),
            headers=headers,
            data=body,
            stream_output=stream,
        )
        if method == "PUT":
            request.headers["Content-Length"] = str(len(body))
        try:
            frozen = self._credentials.get_frozen_credentials()
            S3SigV4Auth(frozen, "s3", self._region).add_auth(request)
            prepared = request.prepare()
            # as botocore's endpoint does: a handler may answer instead (a stub, a test)
            answered = first_non_none_response(
                self._events.emit(f"before-send.s3.{operation}", request=prepared)
            )
            if answered is not None:
                return cast(AWSResponse, answered)
            return cast(AWSResponse, self._session.send(prepared))
        except BotoCoreError as error:  # connection errors: botocore retries and raises
            log.debug("s3 small request %s %s: %s; through botocore", method, key, error)
            return FALL_BACK

    def _unexpected(self, status: int, operation: str) -> _FallBack:
        if status not in _RETRYABLE:
            log.info("s3 %s answered %d: small requests go through botocore", operation, status)
            self.enabled = False
        return FALL_BACK


def _last_modified(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _error_code(body: bytes) -> str | None:
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    code = root.find("Code")
    return code.text if code is not None else None
