"""The S3 driver's small requests (HeadObject, a whole GetObject, PutObject), without botocore's
per-call machinery.

Why: a manifest push is a few small requests (the index read and write, the manifest's own
write, a blob's existence check), and botocore spends 4-5 ms of CPU on each one (measured in
``bench/S3.md``): its event hooks, parameter validation, the endpoint ruleset, the request
serialiser and the response parser, the User-Agent built per call. A registry on two shared
cores pays that CPU on every push. This path builds the same request by hand: the URL from the
bucket's base URL (resolved once by botocore as for its own requests), botocore's own SigV4
signer (``S3SigV4Auth``) with the session's credentials (refreshed as botocore refreshes them),
and the client's own HTTP session (its connection pool, TLS and proxy settings, timeouts).

Only the outcomes a caller expects are answered here: success, a missing object (HEAD 404,
GET ``NoSuchKey``) and a failed ``If-None-Match`` (412). Anything else, an error answer, a
connection error, a redirect, returns :data:`FALL_BACK`, and the caller makes the same call
through botocore, which then retries, follows region redirects, and raises exactly the errors
it always raised. A request repeated that way is safe: HEAD and GET change nothing, a PutObject
writes the same bytes under the same key (a digest or the index's whole content), and a
conditional one that had been stored answers 412 the second time, which reads as "there
already": the object is the one we wrote. A busy server (503 SlowDown, 429, 5xx) waits
botocore's first backoff before botocore's first attempt; other answers (a 403, a 301 to
another region, an expired token) fall back for that call only, and several in a row turn this
path off for a while, so a misconfigured client does not pay two requests per call.

The requests still go through the client's ``before-send`` event, so what counts or stubs the
client's requests sees these too.

``signed_get`` only signs: a large blob's GetObject on a plain-HTTP endpoint, which the driver
sends on a connection of its own so that the body can be relayed to the client
(``socketbody``, ``relay``); any answer but the body asked for is asked again the usual way.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, cast
from urllib.parse import quote
from xml.etree import ElementTree

from botocore.auth import S3SigV4Auth, _host_from_url
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.exceptions import BotoCoreError, ClientError
from botocore.hooks import first_non_none_response
from botocore.response import StreamingBody

log = logging.getLogger("ocireg.storage.s3")


class _FallBack:
    """Answered when botocore must make the call (see the module docstring)."""


FALL_BACK: Final = _FallBack()
_META = "x-amz-meta-"
_RETRYABLE = frozenset({429, 500, 502, 503, 504})  # botocore retries them
# error codes botocore's standard retry mode retries whatever the status (transient)
_THROTTLED = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "SlowDown", "Throttling", "ThrottlingException"}
)
BACKOFF_SECONDS = 1.0  # botocore's standard mode: the first retry waits up to 1 s
REFUSALS_OFF = 3  # unexpected answers in a row that turn this path off for a while
OFF_SECONDS = 300.0
SMALL_MOST = 1 << 20  # bodies above it go through botocore (see put)


class SmallRequests:
    """Signed small requests for one bucket of a botocore S3 client.

    Nothing is resolved when it is made (no credentials, no endpoint: ``ocireg verify`` and
    start-up ask no credential provider): the first request resolves the bucket's base URL
    and signing region as botocore resolves them for a real request (:meth:`_resolve`)."""

    def __init__(self, client: Any, credentials: Callable[[], Any], bucket: str) -> None:
        self._client = client
        self._get_credentials = credentials
        self._bucket = bucket
        self._session = client._endpoint.http_session  # the client's pool, TLS and timeouts
        self._events = client.meta.events
        self._resolve_lock = threading.Lock()
        self._resolved = False
        self._credentials: Any = None
        self._base = ""  # ends with "/"
        self._region = ""
        self._refusals = 0  # unexpected answers in a row (see _unexpected)
        self._off_until = 0.0  # monotonic time until which botocore makes every call
        self.enabled = True

    @classmethod
    def for_client(
        cls, client: Any, credentials: Callable[[], Any], bucket: str
    ) -> SmallRequests | None:
        """None where this path cannot send as botocore would (a client without the HTTP
        session this path uses)."""
        if not hasattr(client, "_endpoint"):
            return None
        return cls(client, credentials, bucket)

    def head(self, key: str) -> dict[str, Any] | _FallBack | None:
        """HeadObject's answer (ContentLength, Metadata, LastModified), None when missing."""
        answer = self._send("HEAD", key, "HeadObject")
        if isinstance(answer, _FallBack):
            return answer
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            return self._unexpected(answer, "HeadObject")
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
        return self._unexpected(answer, "GetObject")

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
        return self._unexpected(answer, "GetObject")

    def put(
        self, key: str, data: bytes, metadata: dict[str, str], if_none_match: bool = False
    ) -> bool | _FallBack:
        """PutObject; with ``if_none_match`` only when nothing is there (False if something
        is: 412). Only bodies up to ``SMALL_MOST`` (manifests, index.json, placeholders):
        for larger ones botocore's unsigned payload with a CRC32 trailer costs less CPU than
        hashing the body for the signature, and S3 checks the body's CRC32."""
        if len(data) > SMALL_MOST:
            return FALL_BACK
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
        if if_none_match and answer.status_code not in _RETRYABLE:
            return FALL_BACK  # an endpoint may refuse the condition alone: the driver decides
        return self._unexpected(answer, "PutObject")

    def _send(
        self,
        method: str,
        key: str,
        operation: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        stream: bool = False,
    ) -> AWSResponse | _FallBack:
        try:
            prepared = self._prepared(method, key, headers, body, stream)
            if prepared is None:
                return FALL_BACK
            # as botocore's endpoint does: a handler may answer instead (a stub, a test)
            answered = first_non_none_response(
                self._events.emit(f"before-send.s3.{operation}", request=prepared)
            )
            if answered is not None:
                return self._expected(cast(AWSResponse, answered))
            return self._expected(cast(AWSResponse, self._session.send(prepared)))
        except BotoCoreError as error:  # connection errors: botocore retries and raises
            log.debug("s3 small request %s %s: %s; through botocore", method, key, error)
            return FALL_BACK

    def _prepared(
        self,
        method: str,
        key: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        stream: bool = False,
    ) -> Any:
        """The request signed and prepared (botocore's ``AWSPreparedRequest``), None while
        this path is off or unresolved."""
        if not self._on() or not self._resolve():
            return None
        request = AWSRequest(
            method=method,
            url=self._base + quote(key, safe="/~"),
            headers=headers,
            data=body,
            stream_output=stream,
        )
        if method == "PUT":
            request.headers["Content-Length"] = str(len(body))
        frozen = self._credentials.get_frozen_credentials()
        S3SigV4Auth(frozen, "s3", self._region).add_auth(request)
        return request.prepare()

    def signed_get(self, key: str, first: int, length: int) -> tuple[str, dict[str, str]] | None:
        """A GetObject of ``length`` bytes from ``first``, signed, for a plain-TCP connection
        of the caller's own (``socketbody``): its URL and headers (Host included), or None
        where it cannot be made so: this path off, an https endpoint, a proxy for the
        endpoint (this would bypass it), a ``before-send`` handler that answers (a stub:
        the caller's usual path meets it)."""
        try:
            prepared = self._prepared("GET", key, {"Range": f"bytes={first}-{first + length - 1}"})
            if prepared is None or not prepared.url.startswith("http://"):
                return None  # off, or TLS: the caller's connection would be plain TCP
            if self._session._proxy_config.proxy_url_for(prepared.url):
                return None
            answered = first_non_none_response(
                self._events.emit("before-send.s3.GetObject", request=prepared)
            )
        except (BotoCoreError, AttributeError) as error:
            log.debug("s3 GetObject %s not signed for a socket of its own: %s", key, error)
            return None
        if answered is not None:
            return None
        headers = {"Host": _host_from_url(prepared.url), **dict(prepared.headers.items())}
        return str(prepared.url), {name: _text(value) for name, value in headers.items()}

    def _on(self) -> bool:
        if self.enabled:
            return True
        if time.monotonic() < self._off_until:
            return False
        self.enabled, self._refusals = True, 0  # a while has passed: try again
        return True

    def _resolve(self) -> bool:
        """The bucket's base URL and signing region, as botocore resolves them for a real
        request: a HeadObject made through the client, answered by a ``before-call`` handler
        before anything is signed or sent. (A presigned URL is not the same: for presigning,
        botocore's ruleset uses the global endpoint, bkt.s3.amazonaws.com, where its requests
        go to the region's.) False, and this path off for good, where it cannot be done."""
        if self._resolved:
            return self._credentials is not None
        with self._resolve_lock:
            if not self._resolved:
                try:
                    self._credentials = self._get_credentials()
                    if self._credentials is not None:  # none: botocore's errors say so
                        self._base, self._region = self._probe()
                except (BotoCoreError, ClientError, ValueError) as error:
                    log.info("s3 small requests go through botocore: %s", error)
                    self._credentials = None
                self._resolved = True
        return self._credentials is not None

    def _probe(self) -> tuple[str, str]:
        probe = f"ocireg-endpoint-probe-{secrets.token_hex(8)}"
        seen: dict[str, Any] = {}

        def answer(params: dict[str, Any], context: dict[str, Any], **_: object) -> Any:
            url = str(params.get("url", "")).split("?", 1)[0]
            if not url.endswith("/" + probe):
                return None  # another thread's real request
            seen["base"] = url[: -len(probe)]
            seen["region"] = context.get("signing", {}).get("region")
            return AWSResponse(url, 200, {}, None), {"ResponseMetadata": {}}

        event = "before-call.s3.HeadObject"
        self._events.register_first(event, answer)
        try:
            self._client.head_object(Bucket=self._bucket, Key=probe)
        finally:
            self._events.unregister(event, answer)
        if "base" not in seen:
            raise ValueError("the endpoint of the bucket could not be resolved")
        region = seen["region"] or self._client.meta.region_name or "us-east-1"
        return str(seen["base"]), str(region)

    def _expected(self, answer: AWSResponse) -> AWSResponse:
        if answer.status_code < 300 or answer.status_code in (404, 412):
            self._refusals = 0
        return answer

    def answered(self, status: int, operation: str) -> None:
        """The status of a request made by hand elsewhere (``signed_get``'s), counted as
        this path's own answers are: a refusal (a redirect, a 403) towards turning the path
        off, an expected answer resetting the count. A busy server's is not counted (the
        usual path retries it), nor a range beyond the end (416)."""
        if status < 300 or status in (404, 412):
            self._refusals = 0
        elif status not in _RETRYABLE and status != 416:
            self._refused(status, operation)

    def _unexpected(self, answer: AWSResponse, operation: str) -> _FallBack:
        """Botocore makes this call again. A busy or failing server (which botocore retries):
        first botocore's own first backoff, so its first attempt is not an immediate second
        try. Any other answer (a refusal, a redirect, an expired token): only this call;
        ``REFUSALS_OFF`` of them in a row (the path itself is likely wrong: another region,
        a signature the endpoint does not take) turn the path off for ``OFF_SECONDS``."""
        status = answer.status_code
        if status in _RETRYABLE or _error_code(answer.content) in _THROTTLED:
            time.sleep(random.random() * BACKOFF_SECONDS)  # jitter, as botocore
            return FALL_BACK
        self._refused(answer.status_code, operation)
        return FALL_BACK

    def _refused(self, status: int, operation: str) -> None:
        self._refusals += 1
        if self._refusals >= REFUSALS_OFF and self.enabled:
            log.info(
                "s3 %s answered %d (%d unexpected answers in a row): small requests go "
                "through botocore for %d s",
                operation,
                status,
                self._refusals,
                OFF_SECONDS,
            )
            self.enabled = False
            self._off_until = time.monotonic() + OFF_SECONDS


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


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
