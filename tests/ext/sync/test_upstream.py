"""The upstream client's TLS set-up from certDir, and Docker-to-OCI conversion's output."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

from ocireg.ext.sync.convert import to_oci
from ocireg.ext.sync.upstream import tls_context
from ocireg.registry.mediatypes import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from tests.certs import issue, make_ca


def cert_dir(tmp_path: Path) -> Path:
    ca = make_ca(tmp_path / "pki", "ca")
    client = issue(ca, tmp_path / "pki", "client", "mirror")
    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / "ca.crt").write_bytes(ca.cert_path.read_bytes())
    (directory / "client.cert").write_bytes(client.cert_path.read_bytes())
    (directory / "client.key").write_bytes(client.key_path.read_bytes())
    return directory


def test_cert_dir_cas_are_trusted(tmp_path: Path) -> None:
    context = tls_context(True, str(cert_dir(tmp_path)))
    assert isinstance(context, ssl.SSLContext)
    subjects = [dict(item[0] for item in c["subject"]) for c in context.get_ca_certs()]
    assert {"commonName": "ca", "organizationName": "ocireg tests"} in subjects
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_unverified_yet_the_client_pair_still_loads(tmp_path: Path) -> None:
    context = tls_context(False, str(cert_dir(tmp_path)))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE
    subjects = [dict(item[0] for item in c["subject"]) for c in context.get_ca_certs()]
    assert {"commonName": "ca", "organizationName": "ocireg tests"} not in subjects
    assert tls_context(False, None) is False and tls_context(True, None) is True


def test_a_docker_list_becomes_an_oci_index_naming_the_converted_children() -> None:
    child = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": "sha256:" + "c" * 64,
            "size": 3,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": "sha256:" + "l" * 64,
                "size": 5,
            }
        ],
    }
    converted = to_oci(json.dumps(child).encode(), DOCKER_MANIFEST, {})
    assert converted is not None
    data, media_type = converted
    document = json.loads(data)
    assert media_type == OCI_MANIFEST == document["mediaType"]
    assert document["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert document["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert to_oci(json.dumps(child).encode(), DOCKER_MANIFEST, {}) == converted  # stable
    entry = {"mediaType": DOCKER_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 9}
    listing = {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [entry]}
    replacement = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "b" * 64, "size": 7}
    index = to_oci(json.dumps(listing).encode(), DOCKER_LIST, {entry["digest"]: replacement})
    assert index is not None
    assert json.loads(index[0])["manifests"] == [replacement] and index[1] == OCI_INDEX
    assert to_oci(data, OCI_MANIFEST, {}) is None  # OCI already: unchanged
