"""events over HTTP: real pushes and deletes make zot's CloudEvents, delivered in binary mode
to loopback receivers that demand Basic credentials, a bearer token or a client certificate,
with per-sink filters and an HMAC signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth.registries import full_access, htpasswd_registry
from tests.certs import issue, issue_server, make_ca
from tests.eventsink import Received, Receiver
from tests.liveserver import LiveServer, live_server
from tests.oci import OCI_MANIFEST, canonical, image_manifest, put_manifest, sha256

SECRET = "a shared secret"
UPDATED = "zotregistry.image.updated"
DELETED = "zotregistry.image.deleted"
CREATED = "zotregistry.repository.created"
LINT_FAILED = "zotregistry.image.lint_failed"


class Receivers:
    def __init__(self, directory: Path) -> None:
        ca = make_ca(directory, "events-ca")
        server = issue_server(ca, directory)
        self.client_cert = issue(ca, directory, "registry-client", "ocireg")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(server.cert_path, server.key_path)
        context.load_verify_locations(ca.cert_path)
        context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no handshake
        basic = base64.b64encode(b"hook:hook-pw").decode()
        self.basic = Receiver(authorization=f"Basic {basic}").start()
        self.token = Receiver(authorization="Bearer t0ken").start()
        self.tls = Receiver(tls=context).start()
        self.filtered = Receiver().start()
        self.ca = ca

    def sinks(self) -> list[dict[str, Any]]:
        return [
            {
                "type": "http",
                "address": self.basic.url,
                "timeout": "5s",
                "credentials": {"username": "hook", "password": "hook-pw"},
                "headers": {"X-Custom-Header": "my-value"},
                "signature": {"secret": SECRET},
            },
            {
                "type": "http",
                "address": self.token.url,
                "credentials": {"token": "t0ken"},
            },
            {
                "type": "http",
                "address": self.tls.url,
                "tls": {
                    "caCertFile": str(self.ca.cert_path),
                    "certFile": str(self.client_cert.cert_path),
                    "keyFile": str(self.client_cert.key_path),
                },
            },
            {
                "type": "http",
                "address": self.filtered.url,
                "events": [DELETED],
                "repositories": ["only/**"],
            },
        ]

    def all(self) -> list[Receiver]:
        return [self.basic, self.token, self.tls, self.filtered]

    def stop(self) -> None:
        for receiver in self.all():
            receiver.stop()


@pytest.fixture(scope="module")
def receivers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receivers]:
    found = Receivers(tmp_path_factory.mktemp("receivers"))
    yield found
    found.stop()


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, receivers: Receivers
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("events-registry")
    extensions = {"events": {"enable": True, "sinks": receivers.sinks()}}
    with htpasswd_registry(directory, {"ci": "ci-pw"}, full_access("ci"), extensions) as live:
        yield live


@pytest.fixture
def ci(registry: LiveServer) -> Iterator[httpx.Client]:
    headers = {"User-Agent": "events-test/1.0"}
    with httpx.Client(base_url=registry.url, auth=("ci", "ci-pw"), headers=headers) as client:
        yield client


def of_repo(received: list[Received], repo: str) -> list[Received]:
    return [r for r in received if r.data.get("name") == repo]


def check_envelope(event: Received, type: str) -> None:
    assert event.type == type
    assert event.headers["ce-source"] == "zotregistry.dev"
    assert event.headers["ce-specversion"] == "1.0"
    assert event.headers["content-type"] == "application/json"
    assert uuid.UUID(event.id).version == 4 and str(uuid.UUID(event.id)) == event.id
    assert event.headers["ce-time"].endswith("Z")


def check_request(event: Received, method: str) -> None:
    assert event.data["actor"] == {"name": "ci"}
    request = event.data["request"]
    assert request["method"] == method
    assert request["useragent"] == "events-test/1.0"
    assert request["addr"].startswith("127.0.0.1:")


def test_a_push_makes_repository_created_then_image_updated_with_zot_fields(
    ci: httpx.Client, receivers: Receivers
) -> None:
    repo = "events/push"
    document = image_manifest(ci, repo)
    put_manifest(ci, repo, "v1", document)
    digest = sha256(canonical(document))
    got = of_repo(receivers.token.wait_for(lambda r: len(of_repo(r, repo)) >= 2), repo)
    created, updated = got
    check_envelope(created, CREATED)
    assert created.data["name"] == repo
    check_envelope(updated, UPDATED)
    assert {k: updated.data[k] for k in ("name", "reference", "digest", "mediaType")} == {
        "name": repo,
        "reference": "v1",
        "digest": digest,
        "mediaType": OCI_MANIFEST,
    }
    assert updated.data["manifest"] == canonical(document).decode()
    check_request(updated, "PUT")
    check_request(created, "POST")  # the first blob upload created the repository


def test_every_sink_receives_the_same_event_with_its_own_credentials(
    ci: httpx.Client, receivers: Receivers
) -> None:
    repo = "events/everywhere"
    put_manifest(ci, repo, "v1", image_manifest(ci, repo))
    ids = []
    for receiver in (receivers.basic, receivers.token, receivers.tls):
        got = of_repo(receiver.wait_for(lambda r: len(of_repo(r, repo)) >= 2), repo)
        ids.append([event.id for event in got])
    assert ids[0] == ids[1] == ids[2]  # one event, one id, whichever sink
    basic = of_repo(receivers.basic.events(), repo)[-1]
    assert basic.headers["x-custom-header"] == "my-value"
    tls = of_repo(receivers.tls.events(), repo)[-1]
    assert tls.peer_cert is not None
    assert dict(x[0] for x in tls.peer_cert["subject"])["commonName"] == "ocireg"
    assert receivers.basic.refused == receivers.token.refused == 0


def test_the_signature_header_is_the_hmac_of_the_body(
    ci: httpx.Client, receivers: Receivers
) -> None:
    repo = "events/signed"
    put_manifest(ci, repo, "v1", image_manifest(ci, repo))
    got = of_repo(receivers.basic.wait_for(lambda r: len(of_repo(r, repo)) >= 2), repo)
    for event in got:
        expected = hmac.new(SECRET.encode(), event.body, hashlib.sha256).hexdigest()
        assert event.headers["x-ocireg-signature"] == f"sha256={expected}"
    unsigned = of_repo(receivers.token.wait_for(lambda r: len(of_repo(r, repo)) >= 2), repo)
    assert all("x-ocireg-signature" not in event.headers for event in unsigned)


def test_deletes_by_tag_and_by_digest_make_image_deleted(
    ci: httpx.Client, receivers: Receivers
) -> None:
    repo = "events/delete"
    document = image_manifest(ci, repo)
    put_manifest(ci, repo, "v1", document)
    put_manifest(ci, repo, "v2", document)
    digest = sha256(canonical(document))
    assert ci.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    assert ci.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    got = receivers.token.wait_for(
        lambda r: len([e for e in of_repo(r, repo) if e.type == DELETED]) >= 2
    )
    deleted = [e for e in of_repo(got, repo) if e.type == DELETED]
    assert [(e.data["reference"], e.data["digest"], e.data["mediaType"]) for e in deleted] == [
        ("v1", digest, OCI_MANIFEST),
        (digest, digest, OCI_MANIFEST),
    ]
    assert "manifest" not in deleted[0].data  # zot's image.deleted carries none
    check_request(deleted[0], "DELETE")
    assert [e.type for e in of_repo(got, repo)] == [CREATED, UPDATED, UPDATED, DELETED, DELETED]


def test_a_sink_gets_only_the_types_and_repositories_its_filters_name(
    ci: httpx.Client, receivers: Receivers
) -> None:
    for repo in ("only/wanted", "elsewhere/unwanted"):
        document = image_manifest(ci, repo)
        put_manifest(ci, repo, "v1", document)
        assert ci.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    receivers.token.wait_for(lambda r: len(of_repo(r, "elsewhere/unwanted")) >= 3)
    got = receivers.filtered.wait_for(lambda r: len(r) >= 1)
    assert [(e.type, e.data["name"]) for e in got] == [(DELETED, "only/wanted")]


def test_the_outbox_is_in_the_meta_db_file_under_tables_of_its_own(registry: LiveServer) -> None:
    import sqlite3

    db = sqlite3.connect(registry.root / ".ocireg" / "meta.db")
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert {"events_outbox", "events_pending", "events_sinks"} <= tables


@pytest.fixture(scope="module")
def linting(tmp_path_factory: pytest.TempPathFactory, receivers: Receivers) -> Iterator[LiveServer]:
    sink = {"type": "http", "address": receivers.token.url, "credentials": {"token": "t0ken"}}
    extensions = {
        "lint": {"mandatoryAnnotations": ["org.opencontainers.image.source"]},
        "events": {"sinks": [sink]},
    }
    with live_server(tmp_path_factory.mktemp("lint-registry"), {"extensions": extensions}) as live:
        yield live


def test_a_lint_refusal_makes_image_lint_failed_with_the_refused_manifest(
    linting: LiveServer, receivers: Receivers
) -> None:
    repo = "events/linted"
    with httpx.Client(base_url=linting.url) as client:
        document = image_manifest(client, repo)
        put_manifest(client, repo, "v1", document, expect=400)
    got = receivers.token.wait_for(lambda r: any(e.type == LINT_FAILED for e in of_repo(r, repo)))
    (failed,) = [e for e in of_repo(got, repo) if e.type == LINT_FAILED]
    check_envelope(failed, LINT_FAILED)
    assert failed.data["reference"] == "v1"
    assert failed.data["digest"] == sha256(canonical(document))
    assert failed.data["mediaType"] == OCI_MANIFEST
    assert failed.data["manifest"] == canonical(document).decode()
    assert failed.data["actor"] == {"name": ""}
    assert UPDATED not in [e.type for e in of_repo(got, repo)]


def test_an_event_is_encoded_once_for_every_http_sink_and_signed_for_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from ocireg.ext.events import sinks
    from ocireg.ext.events.settings import Signature, Sink
    from ocireg.ext.events.store import Stored

    encoded: list[str] = []
    real = sinks.cloud_event

    def counting(event: Stored, source: str) -> Any:
        encoded.append(event.id)
        return real(event, source)

    monkeypatch.setattr(sinks, "cloud_event", counting)
    monkeypatch.setattr(sinks, "encoded", sinks.Encoded())
    event = Stored(str(uuid.uuid4()), "a/b", "zotregistry.image.updated",
                   "2026-01-01T00:00:00Z", '{"name": "a/b"}')  # fmt: skip
    receivers = [Receiver().start(), Receiver().start()]
    signed = Signature(secret="k", header="X-Sig")
    try:
        deliveries = [
            sinks.WebhookDelivery(  # signed first: the other must not get its signature
                Sink(type="http", address=receivers[0].url, signature=signed), "zotregistry.dev"
            ),
            sinks.WebhookDelivery(Sink(type="http", address=receivers[1].url), "zotregistry.dev"),
        ]

        async def deliver() -> None:
            first, second = deliveries
            await first.send(event)
            await first.send(event)  # a retry, before the other sink took it
            await second.send(event)  # the last sink to take it: let go
            kept_after = len(sinks.encoded.kept)
            for delivery in deliveries:
                await delivery.close()
            assert kept_after == 0

        asyncio.run(deliver())
    finally:
        for receiver in receivers:
            receiver.stop()
    assert encoded == [event.id]
    assert sinks.encoded.sharing == 0 and sinks.encoded.bytes == 0
    got = [(each.id, each.type, each.body) for receiver in receivers for each in receiver.received]
    assert got == [(event.id, event.type, b'{"name": "a/b"}')] * 3
    signature = sinks.sign(b"k", b'{"name": "a/b"}')
    assert [each.headers["x-sig"] for each in receivers[0].received] == [signature] * 2
    (unsigned,) = [each.headers for each in receivers[1].received]
    assert "x-sig" not in unsigned  # not the other sink's


def test_the_encoded_events_kept_are_bounded_by_bytes_least_recently_used_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ocireg.ext.events import sinks
    from ocireg.ext.events.store import Stored

    def event(size: int) -> Stored:
        data = '{"manifest": "' + "x" * size + '"}'
        return Stored(str(uuid.uuid4()), "a/b", UPDATED, "2026-01-01T00:00:00Z", data)

    monkeypatch.setattr(sinks, "ENCODED_BYTES", 25_000)
    cache = sinks.Encoded()
    cache.sharing = 2  # two HTTP sinks; only the first takes each event here
    sink = object()
    first, second, third, huge = event(10_000), event(10_000), event(10_000), event(30_000)
    for each in (first, second, first, third, huge):  # first used again: second is oldest
        cache.message(each, "zotregistry.dev", sink)
    assert [event_id for event_id, _ in cache.kept] == [first.id, third.id]  # huge not kept
    assert cache.bytes == sum(len(message[0]) for message, _ in cache.kept.values())
    assert cache.bytes <= 25_000


def test_with_one_http_sink_no_encoded_event_is_kept() -> None:
    from ocireg.ext.events import sinks
    from ocireg.ext.events.store import Stored

    cache = sinks.Encoded()
    cache.sharing = 1
    event = Stored(str(uuid.uuid4()), "a/b", UPDATED, "2026-01-01T00:00:00Z", "{}")
    body, _ = cache.message(event, "zotregistry.dev", object())
    assert body == b"{}" and not cache.kept and cache.bytes == 0
