"""events from real clients: skopeo (Debian) copies an image index in and deletes it, the oras
SDK pushes an artifact and deletes its tag; the receiver sees zot's events, field by field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from ocireg.conformance.layout import build_multiarch_layout
from tests.e2e.test_skopeo import run
from tests.eventsink import Received, Receiver
from tests.liveserver import LiveServer, live_server
from tests.oci import OCI_INDEX, OCI_MANIFEST
from tests.tools import missing

pytestmark = pytest.mark.e2e

CREATED = "zotregistry.repository.created"
UPDATED = "zotregistry.image.updated"
DELETED = "zotregistry.image.deleted"
NO_TLS = "--tls-verify=false"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    made = Receiver().start()
    yield made
    made.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[LiveServer]:
    sinks = [{"type": "http", "address": receiver.url}]
    extra = {"extensions": {"events": {"sinks": sinks}}}
    with live_server(tmp_path_factory.mktemp("events-clients"), extra) as live:
        yield live


def of_repo(received: list[Received], repo: str) -> list[tuple[str, str]]:
    return [(e.type, e.data.get("reference", "")) for e in received if e.data["name"] == repo]


def test_skopeo_copy_and_delete(
    skopeo: str, registry: LiveServer, receiver: Receiver, tmp_path: Path
) -> None:
    repo = "skopeo/events"
    index_digest = build_multiarch_layout(tmp_path / "source", "v1")
    index = json.loads((tmp_path / "source" / "blobs" / "sha256" / index_digest[7:]).read_text())
    children = [child["digest"] for child in index["manifests"]]
    remote = f"docker://{registry.host}/{repo}"
    run(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'source'}:v1",
        f"{remote}:v1")  # fmt: skip
    run(skopeo, "delete", NO_TLS, f"{remote}:v1")
    got = receiver.wait_for(lambda r: (DELETED, index_digest) in of_repo(r, repo))
    seen = of_repo(got, repo)
    assert seen[0] == (CREATED, "")
    assert sorted(seen[1:3]) == sorted((UPDATED, digest) for digest in children)
    assert seen[3:] == [(UPDATED, "v1"), (DELETED, index_digest)]
    mine = [e for e in got if e.data["name"] == repo]
    top = mine[3]
    assert top.data["digest"] == index_digest
    assert top.data["mediaType"] == OCI_INDEX
    assert json.loads(top.data["manifest"]) == index
    assert top.data["request"]["useragent"].startswith("skopeo")
    assert top.data["actor"] == {"name": ""}  # anonymous
    assert mine[4].data["mediaType"] == OCI_INDEX


@pytest.fixture
def oras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    try:
        import oras.client
    except ImportError:
        missing("the oras SDK is not installed: pip install oras")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return oras


def test_oras_push_and_tag_delete(
    oras: ModuleType, registry: LiveServer, receiver: Receiver, tmp_path: Path
) -> None:
    repo = "oras/events"
    Path("artifact.bin").write_bytes(b"an artifact for the events test")
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    target = f"{registry.host}/{repo}:v1"
    assert client.push(files=["artifact.bin"], target=target).status_code == 201
    stored = httpx.get(f"{registry.url}/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    digest = stored.headers["Docker-Content-Digest"]
    assert client.delete_tags(f"{registry.host}/{repo}", "v1") == ["v1"]
    got = receiver.wait_for(lambda r: (DELETED, digest) in of_repo(r, repo))
    assert of_repo(got, repo) == [(CREATED, ""), (UPDATED, "v1"), (DELETED, digest)]
    updated = [e for e in got if e.data["name"] == repo][1]
    assert updated.data["manifest"] == stored.text
    assert updated.data["digest"] == digest
    assert updated.data["mediaType"] == OCI_MANIFEST
