"""An upstream ocireg that lets in only a client certificate (``http.tls.cacert``, access for
the certificate's CommonName only): the mirror presents ``client.cert``/``client.key`` from
``certDir`` (with ``ca.crt``, as zot lays it out) and serves what it pulls on demand; without
the client certificate the upstream refuses it, the log says so, and the puller gets a 404,
never a 500."""

from __future__ import annotations

import shutil
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.certs import Issued, issue, issue_server, make_ca
from tests.liveserver import LiveServer, live_server
from tests.oci import OCI_MANIFEST, canonical, descriptor, image_manifest, put_manifest

pytestmark = pytest.mark.e2e
CLIENT = "mirror-client"


@dataclass
class Secured:
    server: LiveServer
    ca: Issued
    client: Issued
    digest: str


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    pki = tmp_path_factory.mktemp("pki")
    ca = make_ca(pki, "ca")
    server_cert, client = issue_server(ca, pki), issue(ca, pki, "client", CLIENT)
    policy = {"users": [CLIENT], "actions": ["read", "create"]}
    extra = {
        "http": {
            "tls": {
                "cert": str(server_cert.cert_path),
                "key": str(server_cert.key_path),
                "cacert": str(ca.cert_path),
            },
            "accessControl": {"repositories": {"**": {"policies": [policy]}}},
        }
    }
    with live_server(tmp_path_factory.mktemp("upstream"), extra) as server:
        context = ssl.create_default_context(cafile=str(ca.cert_path))
        context.load_cert_chain(str(client.cert_path), str(client.key_path))
        with httpx.Client(base_url=server.url, verify=context, timeout=30) as http:
            manifest = image_manifest(http, "secure/app", [b"behind a client certificate"])
            put_manifest(http, "secure/app", "v1", manifest)
        yield Secured(server, ca, client, descriptor(OCI_MANIFEST, canonical(manifest))["digest"])


def _cert_dir(directory: Path, secured: Secured, with_client: bool) -> Path:
    directory.mkdir()
    shutil.copy(secured.ca.cert_path, directory / "ca.crt")
    if with_client:
        shutil.copy(secured.client.cert_path, directory / "client.cert")
        shutil.copy(secured.client.key_path, directory / "client.key")
    return directory


def _mirror(url: str, cert_dir: Path) -> dict[str, object]:
    upstream = {"urls": [url], "onDemand": True, "tlsVerify": True, "certDir": str(cert_dir)}
    return {"extensions": {"sync": {"registries": [upstream]}}}


def test_the_client_certificate_in_cert_dir_opens_the_upstream(
    tmp_path: Path, upstream: Secured
) -> None:
    context = ssl.create_default_context(cafile=str(upstream.ca.cert_path))
    with httpx.Client(base_url=upstream.server.url, verify=context) as bare:
        assert bare.get("/v2/secure/app/manifests/v1").status_code == 401  # it is locked
    cert_dir = _cert_dir(tmp_path / "certs", upstream, with_client=True)
    with (
        live_server(tmp_path / "mirror", _mirror(upstream.server.url, cert_dir)) as mirror,
        httpx.Client(base_url=mirror.url, timeout=30) as client,
    ):
        pulled = client.get("/v2/secure/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200, pulled.text
        assert pulled.headers["Docker-Content-Digest"] == upstream.digest
        layer = pulled.json()["layers"][0]["digest"]
        blob = client.get(f"/v2/secure/app/blobs/{layer}")
        assert blob.content == b"behind a client certificate"


def test_without_a_client_certificate_the_pull_is_a_404_and_the_log_says_why(
    tmp_path: Path, upstream: Secured
) -> None:
    cert_dir = _cert_dir(tmp_path / "certs", upstream, with_client=False)
    with (
        live_server(tmp_path / "mirror", _mirror(upstream.server.url, cert_dir)) as mirror,
        httpx.Client(base_url=mirror.url, timeout=30) as client,
    ):
        pulled = client.get("/v2/secure/app/manifests/v1")
        assert pulled.status_code == 404, pulled.text
        assert pulled.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        deadline = time.monotonic() + 10
        while not (failed := _failures(mirror)) and time.monotonic() < deadline:
            time.sleep(0.1)
    (line,) = failed
    assert line["reference"] == "v1"
    assert "answered 401 (unauthorized: this mirror sent no credentials" in line["error"]
    assert line["error"].endswith("and no client certificate)"), line


def _failures(server: LiveServer) -> list[dict[str, object]]:
    return [e for e in server.log_events() if e["msg"] == "sync on demand failed"]
