"""Delivering one event to one sink: HTTP (CloudEvents binary mode) or NATS (structured JSON).

A delivery succeeds or raises :class:`DeliveryError`; the sender decides about retries.

HTTP: the event's attributes go in ``ce-*`` headers and its data is the body (binary mode, as
zot sends), over the lean client of :mod:`.webhook`, or httpx for a sink with a ``proxy``.
Any 2xx is success; anything else, a timeout or a connection error is a failure.
Credentials: ``token`` is sent as ``Authorization: Bearer``; otherwise ``username`` and
``password`` as Basic. With ``signature``, the header (``X-Ocireg-Signature`` unless renamed)
carries ``sha256=`` and the hex HMAC-SHA256 of the exact body under the configured key.

NATS: the event as one structured-mode JSON document, published on ``channel`` with the
``Nats-Msg-Id`` header set to the event id (a JetStream stream on the subject then drops
duplicates itself), and flushed: the delivery counts once the server has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import ssl
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .settings import Sink
from .store import Stored


class DeliveryError(Exception):
    """One delivery failed (the sink is down, slow, or refused it)."""


class Delivery(Protocol):
    async def send(self, event: Stored) -> None: ...

    async def close(self) -> None: ...


def cloud_event(event: Stored, source: str) -> Any:
    from cloudevents.core.v1.event import CloudEvent

    attributes = {
        "id": event.id,
        "source": source,
        "type": event.type,
        "specversion": "1.0",
        "time": datetime.fromisoformat(event.time),
        "datacontenttype": "application/json",
    }
    return CloudEvent(attributes=attributes, data=json.loads(event.data))


def tls_context(sink: Sink) -> ssl.SSLContext | None:
    tls = sink.tls
    if tls is None:
        return None
    context = ssl.create_default_context(cafile=tls.caCertFile)
    if tls.certFile and tls.keyFile:
        context.load_cert_chain(tls.certFile, tls.keyFile)
    return context


def signing_key(sink: Sink) -> bytes | None:
    signature = sink.signature
    if signature is None:
        return None
    if signature.secretFile is not None:
        return Path(signature.secretFile).read_bytes().rstrip(b"\r\n")
    return (signature.secret or "").encode()


def sign(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


# Each HTTP sink delivers the same event, and encoding it in binary mode (the CloudEvents SDK's
# validation, JSON of the data) cost more CPU than sending it, so it is done once for all of a
# process's HTTP sinks: kept until each has taken it, within ``ENCODED_BYTES`` of bodies (a body
# embeds its manifest, up to 4 MiB), least recently used out. With one HTTP sink nothing is kept
# (it would help only a retry).
ENCODED_BYTES = 16 * 1024 * 1024

Message = tuple[bytes, dict[str, str]]  # body, its ``ce-*`` and content type headers


class Encoded:
    def __init__(self) -> None:
        # (id, source): the message and which sinks (their deliveries) have taken it
        self.kept: OrderedDict[tuple[str, str], tuple[Message, set[int]]] = OrderedDict()
        self.bytes = 0
        self.sharing = 0  # the HTTP deliveries open in this process

    def message(self, event: Stored, source: str, taker: object) -> Message:
        """The event in binary mode for ``taker`` (do not change the headers)."""
        key = (event.id, source)
        found = self.kept.get(key)
        if found is None:
            from cloudevents.core.bindings.http import to_binary_event

            encoded = to_binary_event(cloud_event(event, source))
            found = ((encoded.body, dict(encoded.headers)), set())
            if self.sharing > 1 and len(encoded.body) <= ENCODED_BYTES:
                self._keep(key, found)
        message, takers = found
        takers.add(id(taker))
        if key in self.kept:
            if len(takers) >= self.sharing:  # every sink has it: a retry encodes it again
                del self.kept[key]
                self.bytes -= len(message[0])
            else:
                self.kept.move_to_end(key)
        return message

    def _keep(self, key: tuple[str, str], found: tuple[Message, set[int]]) -> None:
        self.kept[key] = found
        self.bytes += len(found[0][0])
        while self.bytes > ENCODED_BYTES:
            _, ((body, _), _) = self.kept.popitem(last=False)
            self.bytes -= len(body)


encoded = Encoded()


def _binary(event: Stored, delivery: HttpDelivery | WebhookDelivery) -> Message:
    """The event in CloudEvents' binary mode: (body, headers), signed when the sink signs."""
    body, headers = encoded.message(event, delivery.source, delivery)
    headers = dict(headers)
    sink, key = delivery.sink, delivery.key
    if key is not None and sink.signature is not None:
        headers[sink.signature.header] = sign(key, body)
    return body, headers


class WebhookDelivery:
    """An HTTP sink without a proxy, through the lean client of :mod:`.webhook`."""

    def __init__(self, sink: Sink, source: str) -> None:
        from .webhook import Webhook

        encoded.sharing += 1
        self.shares = True
        self.sink = sink
        self.source = source
        self.key = signing_key(sink)
        headers = dict(sink.headers)
        basic = None
        credentials = sink.credentials
        if credentials is not None and credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        elif credentials is not None and credentials.username is not None:
            basic = (credentials.username, credentials.password or "")
        self.webhook = Webhook(sink.address, headers, tls_context(sink), basic)

    async def send(self, event: Stored) -> None:
        from .webhook import ResponseError

        body, headers = _binary(event, self)
        try:
            async with asyncio.timeout(self.sink.timeout):
                status = await self.webhook.post(body, headers)
        except TimeoutError:
            raise DeliveryError(f"no answer in {self.sink.timeout:g}s") from None
        except (OSError, EOFError, ValueError, ResponseError, asyncio.LimitOverrunError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"HTTP {status}")

    async def close(self) -> None:
        encoded.sharing -= self.shares
        self.shares = False
        await self.webhook.close()


class HttpDelivery:
    """An HTTP sink through a proxy, by httpx."""

    def __init__(self, sink: Sink, source: str) -> None:
        import httpx

        encoded.sharing += 1
        self.shares = True
        self.sink = sink
        self.source = source
        self.key = signing_key(sink)
        auth: Any = None
        headers = dict(sink.headers)
        credentials = sink.credentials
        if credentials is not None and credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        elif credentials is not None and credentials.username is not None:
            auth = httpx.BasicAuth(credentials.username, credentials.password or "")
        verify: Any = tls_context(sink) or True
        self.client = httpx.AsyncClient(
            timeout=sink.timeout,
            verify=verify,
            proxy=sink.proxy,
            headers=headers,
            auth=auth,
            trust_env=False,  # the configured proxy, or none: not the environment's
        )

    async def send(self, event: Stored) -> None:
        import httpx

        body, headers = _binary(event, self)
        try:
            answer = await self.client.post(self.sink.address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if not 200 <= answer.status_code < 300:
            raise DeliveryError(f"HTTP {answer.status_code}")

    async def close(self) -> None:
        encoded.sharing -= self.shares
        self.shares = False
        await self.client.aclose()


class NatsDelivery:
    def __init__(self, sink: Sink, source: str) -> None:
        self.sink = sink
        self.source = source
        self.connection: Any = None

    async def _connect(self) -> Any:
        import nats

        if self.connection is not None and self.connection.is_connected:
            return self.connection
        await self.close()
        options: dict[str, Any] = {}
        credentials = self.sink.credentials
        if credentials is not None:
            if credentials.username is not None:
                options["user"], options["password"] = credentials.username, credentials.password
            if credentials.token:
                options["token"] = credentials.token
            if credentials.file:
                options["user_credentials"] = credentials.file
        context = tls_context(self.sink)
        if context is not None:
            options["tls"] = context

        async def quiet(_error: Exception) -> None:
            """A lost connection is seen by the next delivery, which fails and is retried."""

        self.connection = await nats.connect(
            servers=[self.sink.address],
            connect_timeout=self.sink.timeout,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            error_cb=quiet,
            **options,
        )
        return self.connection

    async def send(self, event: Stored) -> None:
        from cloudevents.core.formats.json import JSONFormat

        body = JSONFormat().write(cloud_event(event, self.source))
        try:
            connection = await self._connect()
            await connection.publish(
                self.sink.channel or "", body, headers={"Nats-Msg-Id": event.id}
            )
            await connection.flush(timeout=self.sink.timeout)
        except Exception as exc:  # nats-py raises many kinds; all mean "not delivered"
            await self.close()
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing to save
                await connection.close()


def delivery_for(sink: Sink, source: str) -> Delivery:
    if sink.type == "nats":
        return NatsDelivery(sink, source)
    if sink.proxy is not None:
        return HttpDelivery(sink, source)
    return WebhookDelivery(sink, source)
