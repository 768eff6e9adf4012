"""events to NATS: Debian's nats-server (started once for the session, with a token), a nats-py
subscriber, and events as structured-mode CloudEvents JSON, field by field (with the source
and type prefix configured)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.liveserver import LiveServer, live_server
from tests.natsserver import NatsServer, Subscriber, nats_server
from tests.oci import OCI_MANIFEST, canonical, image_manifest, put_manifest, sha256

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with nats_server(tmp_path_factory.mktemp("nats"), token="nats-t0ken") as server:
        yield server


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, nats: NatsServer) -> Iterator[LiveServer]:
    sinks = [
        {
            "type": "nats",
            "address": nats.url,
            "channel": "registry.events",
            "timeout": "5s",
            "credentials": {"token": nats.token},
        }
    ]
    events = {"sinks": sinks, "source": "https://registry.test", "typePrefix": "com.example"}
    extra = {"extensions": {"events": events}}
    with live_server(tmp_path_factory.mktemp("events-nats"), extra) as live:
        yield live


def test_a_push_and_a_delete_arrive_as_structured_cloudevents(
    registry: LiveServer, nats: NatsServer
) -> None:
    repo = "nats/image"
    with Subscriber(nats, "registry.events") as subscriber:
        with httpx.Client(base_url=registry.url) as client:
            document = image_manifest(client, repo)
            put_manifest(client, repo, "v1", document)
            assert client.delete(f"/v2/{repo}/manifests/v1").status_code == 202
        messages = subscriber.wait_for(3)
    digest = sha256(canonical(document))
    types = [body["type"] for body, _ in messages]
    assert types == [
        "com.example.repository.created",
        "com.example.image.updated",
        "com.example.image.deleted",
    ]
    for body, headers in messages:
        assert body["specversion"] == "1.0"
        assert body["source"] == "https://registry.test"
        assert body["datacontenttype"] == "application/json"
        assert headers["Nats-Msg-Id"] == body["id"]
        assert uuid.UUID(body["id"])
    updated = messages[1][0]["data"]
    assert updated["name"] == repo
    assert updated["reference"] == "v1"
    assert updated["digest"] == digest
    assert updated["mediaType"] == OCI_MANIFEST
    assert updated["manifest"] == canonical(document).decode()
    assert updated["request"]["method"] == "PUT"
    deleted = messages[2][0]["data"]
    assert (deleted["reference"], deleted["digest"]) == ("v1", digest)
