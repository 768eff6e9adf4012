"""The ``sbom`` extension's access: whoever may read a repository may read its images' SBOMs,
and nobody else learns anything, not even whether the image exists. (What an SBOM lists is
checked end to end, with real package records, in ``test_cve_e2e``.)"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.registries import htpasswd_registry
from tests.liveserver import LiveServer
from tests.oci import image_manifest, put_manifest

USERS = {"owner": "owner-pw", "reader": "reader-pw", "stranger": "stranger-pw"}
ACCESS = {
    "repositories": {
        "team/**": {
            "policies": [
                {"users": ["owner"], "actions": ["read", "create", "update", "delete"]},
                {"users": ["reader"], "actions": ["read"]},
            ]
        }
    }
}
OS_RELEASE_ONLY = "etc/os-release"


def _layer() -> bytes:
    raw = io.BytesIO()
    data = b'ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n'
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        member = tarfile.TarInfo(OS_RELEASE_ONLY)
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return raw.getvalue()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory: Path = tmp_path_factory.mktemp("sbom-auth")
    with htpasswd_registry(directory, USERS, ACCESS, {"sbom": {}}) as live:
        with httpx.Client(base_url=live.url, auth=("owner", "owner-pw"), timeout=30) as owner:
            put_manifest(owner, "team/app", "v1", image_manifest(owner, "team/app", [_layer()]))
        yield live


@pytest.mark.parametrize(
    ("auth", "reference", "status"),
    [
        (("reader", "reader-pw"), "v1", 200),
        (("owner", "owner-pw"), "v1", 200),
        (("reader", "reader-pw"), "v9", 404),
        (("stranger", "stranger-pw"), "v1", 403),
        (("stranger", "stranger-pw"), "v9", 403),  # no hint whether v9 exists
        (("reader", "wrong"), "v1", 401),
        (None, "v1", 401),
    ],
)
def test_whoever_may_read_the_repository_reads_its_sboms(
    registry: LiveServer, auth: tuple[str, str] | None, reference: str, status: int
) -> None:
    with httpx.Client(base_url=registry.url, auth=auth, timeout=30) as client:
        response = client.get("/v2/team/app/_ocireg/sbom", params={"reference": reference})
    assert response.status_code == status, response.text
    if status == 200:
        bom = response.json()
        assert bom["components"] == [
            {"type": "operating-system", "name": "alpine", "version": "3.20.3",
             "description": "Alpine Linux v3.20", "bom-ref": "os:alpine"}
        ]  # fmt: skip
    codes = {401: "UNAUTHORIZED", 403: "DENIED", 404: "MANIFEST_UNKNOWN"}
    if status in codes:
        assert response.json()["errors"][0]["code"] == codes[status]
    if status == 401:
        assert "www-authenticate" in response.headers
