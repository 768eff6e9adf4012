"""oras (PyPI SDK) pushes and pulls artifacts, monolithic and chunked, and attaches a referrer."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.liveserver import LiveServer
from tests.tools import missing

pytestmark = pytest.mark.e2e


@pytest.fixture
def oras_client(server: LiveServer):  # type: ignore[no-untyped-def]
    try:
        import oras.client
    except ImportError:
        missing("the oras SDK is not installed: pip install oras")
    return oras.client.OrasClient(hostname=server.host, insecure=True, auth_backend="basic")


@pytest.mark.parametrize("chunked", [False, True], ids=["monolithic", "chunked"])
def test_push_and_pull(
    oras_client, server: LiveServer, tmp_path: Path, chunked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    payload = os.urandom(3 * 1024 * 1024 + 17)
    Path("artifact.bin").write_bytes(payload)
    target = f"{server.host}/oras/artifact:{'chunked' if chunked else 'mono'}"
    response = oras_client.push(
        files=["artifact.bin"], target=target, do_chunked=chunked, chunk_size=1024 * 1024
    )
    assert response.status_code == 201
    assert oras_client.get_tags(f"{server.host}/oras/artifact")
    out = tmp_path / "out"
    pulled = oras_client.pull(target=target, outdir=str(out))
    assert [Path(p).read_bytes() for p in pulled] == [payload]


def test_attach_referrer_and_discover(
    oras_client, server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import oras.oci

    monkeypatch.chdir(tmp_path)
    Path("image.txt").write_text("the subject")
    Path("sbom.json").write_text('{"sbom": true}')
    subject_ref = f"{server.host}/oras/withref:v1"
    pushed = oras_client.push(files=["image.txt"], target=subject_ref)
    digest = pushed.headers["Docker-Content-Digest"]
    size = len(httpx.get(f"{server.url}/v2/oras/withref/manifests/v1").content)
    subject = oras.oci.Subject(
        mediaType="application/vnd.oci.image.manifest.v1+json", digest=digest, size=size
    )
    attached = oras_client.push(
        files=["sbom.json"], target=f"{server.host}/oras/withref", subject=subject
    )
    assert attached.headers["OCI-Subject"] == digest
    referrers = httpx.get(f"{server.url}/v2/oras/withref/referrers/{digest}").json()
    assert [m["digest"] for m in referrers["manifests"]] == [
        attached.headers["Docker-Content-Digest"]
    ]
