"""``cve.attachSBOM``: a scanned image gets its SBOM pushed beside it as a referrer, which the
referrers API lists (as ``oras discover`` reads it) and which pulls like any artifact."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ocireg.ext.cve.store import CveStore
from tests.ext.test_cve_search import _wait_for
from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, put_manifest

CYCLONEDX = "application/vnd.cyclonedx+json"
OS_RELEASE = b'ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n'
METADATA = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.30.0\n\nbody\n"


def _layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for path, data in files.items():
            member = tarfile.TarInfo(path)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return raw.getvalue()


def _referrers(client: httpx.Client, repo: str, digest: str) -> list[dict[str, Any]]:
    response = client.get(f"/v2/{repo}/referrers/{digest}")
    assert response.status_code == 200, response.text
    return list(response.json()["manifests"])


def _wait_for_referrers(client: httpx.Client, repo: str, digest: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while not (found := _referrers(client, repo, digest)):
        assert time.monotonic() < deadline, "no SBOM was attached"
        time.sleep(0.1)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    extra = {"extensions": {"search": {"cve": {"attachSBOM": True}}}}
    with live_server(tmp_path_factory.mktemp("attach"), extra) as live:
        yield live


def test_a_scanned_image_gets_its_sbom_as_a_referrer(server: LiveServer) -> None:
    files = {"etc/os-release": OS_RELEASE, "usr/lib/python3.12/site-packages/"
             "requests-2.30.0.dist-info/METADATA": METADATA}  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=30) as client:
        document = image_manifest(client, "team/app", [_layer(files)])
        pushed = put_manifest(client, "team/app", "v1", document)
        digest = pushed.headers["Docker-Content-Digest"]
        (referrer,) = _wait_for_referrers(client, "team/app", digest)
        assert referrer["artifactType"] == CYCLONEDX
        assert referrer["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        artifact = client.get(f"/v2/team/app/manifests/{referrer['digest']}").json()
        assert artifact["subject"]["digest"] == digest
        assert artifact["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
        (layer,) = artifact["layers"]
        assert layer["mediaType"] == CYCLONEDX
        blob = client.get(f"/v2/team/app/blobs/{layer['digest']}").content
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
        bom = json.loads(blob)
        assert bom["metadata"]["component"]["name"] == f"team/app@{digest}"
        assert {c["name"]: c.get("purl") for c in bom["components"]} == {
            "alpine": None, "requests": "pkg:pypi/requests@2.30.0"
        }  # fmt: skip
        # the artifact itself is not scanned, so it gets no SBOM of its own
        time.sleep(1)
        assert _referrers(client, "team/app", referrer["digest"]) == []
        assert _referrers(client, "team/app", digest) == [referrer]


def test_without_the_key_nothing_is_attached(tmp_path_factory: pytest.TempPathFactory) -> None:
    extra = {"extensions": {"search": {"cve": {}}}}
    with (
        live_server(tmp_path_factory.mktemp("no-attach"), extra) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        document = image_manifest(client, "team/app", [_layer({"etc/os-release": OS_RELEASE})])
        digest = put_manifest(client, "team/app", "v1", document).headers["Docker-Content-Digest"]
        store = CveStore.reader(live.root / ".ocireg" / "meta.db")
        _wait_for(lambda: digest in store.scan_counts())
        store.close()
        time.sleep(0.5)  # were an SBOM attached, it would be pushed right after the scan
        assert _referrers(client, "team/app", digest) == []


def test_an_sbom_that_lint_refuses_is_logged_and_the_scan_stands(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    source = "org.opencontainers.image.source"
    extra = {
        "extensions": {
            "search": {"cve": {"attachSBOM": True}},
            "lint": {"mandatoryAnnotations": [source]},
        }
    }
    with (
        live_server(tmp_path_factory.mktemp("lint-attach"), extra) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        layers = [_layer({"etc/os-release": OS_RELEASE})]
        document = image_manifest(client, "team/app", layers, annotations={source: "x"})
        digest = put_manifest(client, "team/app", "v1", document).headers["Docker-Content-Digest"]
        _wait_for(lambda: any(e["msg"] == "cve sbom not attached" for e in live.log_events()))
        (refused,) = [e for e in live.log_events() if e["msg"] == "cve sbom not attached"]
        assert (refused["digest"], refused["error"]) == (digest, "MANIFEST_INVALID")
        assert _referrers(client, "team/app", digest) == []
        store = CveStore.reader(live.root / ".ocireg" / "meta.db")
        assert store.scan_states([digest]) == {digest: ""}  # scanned, without error
        store.close()
