"""events on a registry without a root (storage in memory, meta DB in memory): the outbox is in
memory too and the registry's own scheduler delivers, through the ASGI app."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from ocireg.config import Config
from ocireg.storage.memory import MemoryDriver
from tests.eventsink import Receiver
from tests.ext.test_events_faults import references
from tests.oci import image_manifest, put_manifest


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver().start()
    yield made
    made.stop()


def test_the_scheduler_delivers_when_the_meta_db_is_in_memory(receiver: Receiver) -> None:
    with warnings.catch_warnings():
        # connexion's imports use deprecated jsonschema and starlette names; not ours to fix
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        from ocireg.app import create_app

    sinks = [{"type": "http", "address": receiver.url}]
    config = Config.model_validate(
        {"storage": {"rootDirectory": "/unused"}, "extensions": {"events": {"sinks": sinks}}}
    )
    with TestClient(create_app(config, MemoryDriver())) as client:
        document = image_manifest(client, "memory/a")
        for tag in ("v1", "v2"):
            put_manifest(client, "memory/a", tag, document)
        got = receiver.wait_for(lambda r: len(references(r, "memory/a")) == 2)
    assert references(got, "memory/a") == ["v1", "v2"]
    assert got[0].data["request"]["method"] == "POST"
