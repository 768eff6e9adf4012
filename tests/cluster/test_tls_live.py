"""Members that serve HTTPS reach each other over TLS, verified against ``cluster.tls.cacert``."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from tests.certs import issue_server, make_ca
from tests.cluster.members3 import owned_by, three_members
from tests.oci import image_manifest, put_manifest


def _https(directory: Path) -> tuple[dict[str, object], Path]:
    ca = make_ca(directory / "pki", "members")
    server = issue_server(ca, directory / "pki")
    tls = {"cert": str(server.cert_path), "key": str(server.key_path)}
    return {"http": {"tls": tls}}, ca.cert_path


def test_members_talk_over_tls_verified_by_the_cluster_ca(tmp_path: Path) -> None:
    extra, ca = _https(tmp_path)
    with three_members(tmp_path, extra, tls={"cacert": str(ca)}) as members:
        repo = owned_by(1, "tls/r-")
        with httpx.Client(
            base_url=members[0].url, verify=ssl.create_default_context(cafile=ca), timeout=30
        ) as client:
            document = image_manifest(client, repo)
            put_manifest(client, repo, "v1", document)
            assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200
            assert client.get("/v2/_catalog").json()["repositories"] == [repo]
        assert (members[1].root / repo / "index.json").exists()
        assert not (members[0].root / repo).exists()


def test_a_member_whose_certificate_the_cluster_ca_did_not_sign_is_not_trusted(
    tmp_path: Path,
) -> None:
    extra, ca = _https(tmp_path)
    other = make_ca(tmp_path / "other", "someone else")
    with three_members(
        tmp_path, extra, tls={"cacert": str(other.cert_path)}, started=(0, 1)
    ) as members:
        repo = owned_by(1, "tls/r-")
        with httpx.Client(
            base_url=members[0].url, verify=ssl.create_default_context(cafile=ca), timeout=30
        ) as client:
            answer = client.get(f"/v2/{repo}/tags/list")
        assert answer.status_code == 503
        error = answer.json()["errors"][0]
        assert error["code"] == "UNAVAILABLE"
        assert "CERTIFICATE_VERIFY_FAILED" in error["detail"]["reason"]
        assert error["detail"]["member"] == members[1].host
