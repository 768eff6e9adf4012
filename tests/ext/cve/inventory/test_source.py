"""An image pushed to a live registry, inventoried from the registry's own storage."""

from __future__ import annotations

import httpx
import pytest

from ocireg.digests import parse_digest
from ocireg.ext.cve.inventory import InventoryError, inventory
from ocireg.ext.cve.inventory.source import image_layers
from ocireg.registry import layout
from ocireg.registry.locks import KeyedLocks
from ocireg.registry.store import Registry
from ocireg.storage.filesystem import FilesystemDriver
from tests.liveserver import LiveServer
from tests.oci import OCI_CONFIG, canonical, descriptor, push_blob, put_manifest, sha256

from .images import Compression, File, Link, layer, os_release_files, tree
from .test_dpkg import STATUS, dpkg_query
from .test_python import SITE, dist_info

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"


def push_image(client: httpx.Client, repo: str, layers: list[tuple[str, bytes]]) -> str:
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    push_blob(client, repo, config)
    for _, blob in layers:
        push_blob(client, repo, blob)
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(media_type, blob) for media_type, blob in layers],
    }
    put_manifest(client, repo, "v1", document)
    return sha256(canonical(document))


def stored(server: LiveServer) -> Registry:
    return Registry(FilesystemDriver(server.root), KeyedLocks(None))


def blob_of(files: list[File | Link], compression: Compression = "gzip") -> bytes:
    _, opener = layer(files, compression)
    return opener().read()


def test_an_image_pushed_with_gzip_and_zstd_layers(
    server: LiveServer, client: httpx.Client, repo: str
) -> None:
    expected = dpkg_query()
    base = blob_of([File("var/lib/dpkg/status", source=STATUS), *os_release_files()])
    app = blob_of(tree(dist_info("PyYAML"), f"{SITE}/{dist_info('PyYAML').name}"), "zstd")
    digest = push_image(client, repo, [(GZIP_LAYER, base), (ZSTD_LAYER, app)])
    registry = stored(server)
    manifest = registry.read_manifest(repo, digest, None)
    assert manifest is not None
    found = inventory(image_layers(registry, repo, manifest))
    debian = [p for p in found.packages if p.ecosystem == "Debian:12"]
    pypi = [p for p in found.packages if p.ecosystem == "PyPI"]
    assert {(p.name, p.version, p.source_name, p.source_version) for p in debian} == expected
    assert [p.name for p in pypi] == ["PyYAML"]
    assert len(debian) + len(pypi) == len(found.packages)
    assert {p.layer for p in debian} == {sha256(base)}
    assert pypi[0].layer == sha256(app)


def test_an_artifact_is_not_an_image(server: LiveServer, client: httpx.Client, repo: str) -> None:
    sbom = b'{"bomFormat": "CycloneDX"}'
    empty = b"{}"
    push_blob(client, repo, empty)
    push_blob(client, repo, sbom)
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.cyclonedx+json",
        "config": descriptor("application/vnd.oci.empty.v1+json", empty),
        "layers": [descriptor("application/vnd.cyclonedx+json", sbom)],
    }
    put_manifest(client, repo, "sbom", document)
    registry = stored(server)
    manifest = registry.read_manifest(repo, sha256(canonical(document)), None)
    assert manifest is not None
    with pytest.raises(InventoryError, match="not a container image"):
        image_layers(registry, repo, manifest)


def test_a_layer_gone_from_storage_fails_the_inventory(
    server: LiveServer, client: httpx.Client, repo: str
) -> None:
    base = blob_of([File("var/lib/dpkg/status", source=STATUS)])
    digest = push_image(client, repo, [(GZIP_LAYER, base)])
    registry = stored(server)
    manifest = registry.read_manifest(repo, digest, None)
    assert manifest is not None
    (server.root / layout.blob_file(repo, parse_digest(sha256(base)))).unlink()
    with pytest.raises(InventoryError, match="is not in"):
        inventory(image_layers(registry, repo, manifest))
