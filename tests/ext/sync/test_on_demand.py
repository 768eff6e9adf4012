"""On-demand sync against a real upstream (docker-registry with htpasswd): skopeo pulls from
the mirror what only the upstream has, and gets the same content."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ocireg.conformance.layout import build_multiarch_layout
from ocireg.registry.mediatypes import DOCKER_LIST, OCI_INDEX, OCI_MANIFEST
from tests.ext.sync.upstreams import (
    credentials_file,
    inspect_digest,
    mirror,
    raw,
    skopeo,
    upstream_registry,
)
from tests.liveserver import LiveServer, live_server

pytestmark = pytest.mark.e2e


def on_demand(url: str, credentials: Path, **more: object) -> dict[str, object]:
    registry = {
        "urls": [url],
        "onDemand": True,
        "tlsVerify": False,
        "maxRetries": 1,
        "retryDelay": "100ms",
        **more,
    }
    return {"credentialsFile": str(credentials), "registries": [registry]}


def test_oci_index_pulled_on_demand_keeps_its_digest(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    index_digest = build_multiarch_layout(layout, "v1")
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "library/multi", "v1")
        creds = credentials_file(tmp_path / "creds.json", upstream)
        with mirror(tmp_path / "mirror", on_demand(upstream.url, creds)) as server:
            remote = f"docker://{server.host}/library/multi:v1"
            assert inspect_digest(upstream.skopeo, remote) == index_digest
            out = tmp_path / "out"
            skopeo(
                upstream.skopeo, "copy", "--all", "--src-tls-verify=false", remote, f"oci:{out}:v1"
            )
            assert (
                raw(upstream.skopeo, f"oci:{out}:v1")["manifests"]
                == raw(upstream.skopeo, f"oci:{layout}:v1")["manifests"]
            )


def stored_images(server: LiveServer) -> list[dict[str, object]]:
    return [e for e in server.log_events() if e["msg"] == "sync image stored"]


def wait_for(predicate: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_docker_list_is_converted_to_oci_once_and_stays_stable(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    build_multiarch_layout(layout, "v1")
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "library/dock", "v1", "--format", "v2s2")
        source = raw(upstream.skopeo, f"docker://{upstream.host}/library/dock:v1", creds=True)
        assert source["mediaType"] == DOCKER_LIST
        creds = credentials_file(tmp_path / "creds.json", upstream)
        sync = on_demand(upstream.url, creds, manifestCheckInterval="0s")
        with mirror(tmp_path / "mirror", sync) as server:
            remote = f"docker://{server.host}/library/dock:v1"
            converted = raw(upstream.skopeo, remote)
            assert converted["mediaType"] == OCI_INDEX
            assert {m["mediaType"] for m in converted["manifests"]} == {OCI_MANIFEST}
            out = tmp_path / "out"
            skopeo(
                upstream.skopeo, "copy", "--all", "--src-tls-verify=false", remote, f"oci:{out}:v1"
            )
            first = inspect_digest(upstream.skopeo, remote)
            wait_for(lambda: any(e["tags"] == ["v1"] for e in stored_images(server)))
            # every pull checks the upstream (interval 0): unchanged there, nothing copied again
            assert inspect_digest(upstream.skopeo, remote) == first
            assert inspect_digest(upstream.skopeo, f"oci:{out}:v1") == first
            time.sleep(0.5)
            assert len([e for e in stored_images(server) if e["tags"] == ["v1"]]) == 1
        # the layers are the upstream's, byte for byte
        upstream_layers = set()
        for child in source["manifests"]:
            ref = f"docker://{upstream.host}/library/dock@{child['digest']}"
            manifest = raw(upstream.skopeo, ref, creds=True)
            upstream_layers |= {layer["digest"] for layer in manifest["layers"]}
        mirrored_layers = {p.name for p in (out / "blobs" / "sha256").iterdir()}
        assert {d.split(":")[1] for d in upstream_layers} <= mirrored_layers


def test_preserve_digest_keeps_docker_manifests_as_they_are(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    build_multiarch_layout(layout, "v1", arches=("amd64",))
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "keep/dock", "v1", "--format", "v2s2")
        creds = credentials_file(tmp_path / "creds.json", upstream)
        with mirror(tmp_path / "mirror", on_demand(upstream.url, creds, preserveDigest=True)) as m:
            remote = f"docker://{m.host}/keep/dock:v1"
            assert inspect_digest(upstream.skopeo, remote) == upstream.digest("keep/dock", "v1")
            assert raw(upstream.skopeo, remote)["mediaType"] == DOCKER_LIST


def test_metrics_count_images_bytes_and_failures_per_upstream(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    build_multiarch_layout(layout, "v1", arches=("amd64",))
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "counted/app", "v1")
        creds = credentials_file(tmp_path / "creds.json", upstream)
        extra = {"extensions": {"sync": on_demand(upstream.url, creds), "metrics": {}}}
        with live_server(tmp_path / "mirror", extra) as server:
            out = tmp_path / "out"
            skopeo(
                upstream.skopeo,
                "copy",
                "--all",
                "--src-tls-verify=false",
                f"docker://{server.host}/counted/app:v1",
                f"oci:{out}:v1",
            )
            missing = httpx.get(f"{server.url}/v2/counted/app/blobs/sha256:{'0' * 64}", timeout=30)
            assert missing.status_code == 404
            wait_for(lambda: len([e for e in stored_images(server) if e["tags"] == ["v1"]]) == 1)
            text = httpx.get(f"{server.url}/metrics", timeout=30).text
        label = f'{{upstream="{upstream.url}"}}'
        figures = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith("ocireg_sync_") and label in line
        }
        assert figures[f"ocireg_sync_images_total{label}"] == 2  # the index and its image
        assert figures[f"ocireg_sync_blobs_total{label}"] == 2  # config and layer
        layers = sum(p.stat().st_size for p in (layout / "blobs/sha256").iterdir())
        assert 0 < figures[f"ocireg_sync_bytes_total{label}"] < layers
        # a blob the upstream does not have is no failure of the upstream
        assert f"ocireg_sync_failures_total{label}" not in figures


def test_a_blob_another_repository_stores_is_taken_from_storage_not_fetched(
    tmp_path: Path,
) -> None:
    """Two upstream repositories of one image: the second pull through the mirror fetches
    none of the blobs the first stored (dedupe's store has them): its repository takes them
    from there, logged blob by blob, and the metrics count them apart."""
    layout = tmp_path / "layout"
    build_multiarch_layout(layout, "v1", arches=("amd64",))
    with upstream_registry(tmp_path / "upstream") as upstream:
        for name in ("shared/a", "shared/b"):
            upstream.push(layout, "v1", name, "v1")
        creds = credentials_file(tmp_path / "creds.json", upstream)
        extra = {"extensions": {"sync": on_demand(upstream.url, creds), "metrics": {}}}
        with live_server(tmp_path / "mirror", extra) as server:
            for name in ("shared/a", "shared/b"):
                skopeo(
                    upstream.skopeo,
                    "copy",
                    "--all",
                    "--src-tls-verify=false",
                    f"docker://{server.host}/{name}:v1",
                    f"oci:{tmp_path / name.replace('/', '-')}:v1",
                )
                wait_for(
                    lambda n=name: any(
                        e["repo"] == n and e["tags"] == ["v1"] for e in stored_images(server)
                    )
                )
            text = httpx.get(f"{server.url}/metrics", timeout=30).text
            taken = [e for e in server.log_events() if e["msg"] == "sync blob taken from storage"]
    label = f'{{upstream="{upstream.url}"}}'
    figures = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("ocireg_sync_") and label in line
    }
    assert figures[f"ocireg_sync_blobs_total{label}"] == 2  # config and layer, once
    assert figures[f"ocireg_sync_local_blobs_total{label}"] == 2  # the same, for shared/b
    # the config and layer, by digest, into shared/b (the manifests each copy stores itself)
    assert {(e["repo"], e["digest"].split(":")[1]) for e in taken} == {
        ("shared/b", digest) for digest in _config_and_layers(layout)
    }


def _config_and_layers(layout: Path) -> set[str]:
    """The hex digests of the configs and layers of an OCI layout's image manifests."""
    found: set[str] = set()
    for blob in (layout / "blobs" / "sha256").iterdir():
        try:
            document = json.loads(blob.read_bytes())
        except (UnicodeDecodeError, ValueError):
            continue  # a layer
        if isinstance(document, dict) and "layers" in document:  # an image manifest
            found.add(document["config"]["digest"].split(":")[1])
            found.update(layer["digest"].split(":")[1] for layer in document["layers"])
    return found
