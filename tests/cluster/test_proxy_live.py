"""Three live members: every repository is stored by its owner alone, and a request that
reaches another member is proxied to it, streaming, with the caller's credentials."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ocireg.conformance.layout import build_multiarch_layout
from tests.cluster.members3 import owned_by, three_members
from tests.liveserver import LiveServer
from tests.oci import image_manifest, put_manifest
from tests.tools import require_binary

HOP = "X-Zot-Cluster-Hop-Count"


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LiveServer]]:
    with three_members(tmp_path_factory.mktemp("cluster")) as live:
        yield live


def skopeo(*args: str) -> str:
    binary = require_binary("skopeo", "apt-get install skopeo")
    result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"skopeo {' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def stored_in(member: LiveServer, repo: str) -> bool:
    return (member.root / repo / "index.json").exists()


@pytest.mark.e2e
def test_skopeo_pushes_and_pulls_through_every_member(
    members: list[LiveServer], tmp_path: Path
) -> None:
    source = tmp_path / "source"
    index_digest = build_multiarch_layout(source, "v1")
    no_tls = ("--src-tls-verify=false", "--dest-tls-verify=false")
    for entry, member in enumerate(members):
        owner = (entry + 1) % 3
        repo = owned_by(owner, f"skopeo/through{entry}-")
        skopeo("copy", "--all", *no_tls, f"oci:{source}:v1", f"docker://{member.host}/{repo}:v1")
        # stored by its owner only: the member reached stored nothing
        assert [stored_in(m, repo) for m in members] == [i == owner for i in range(3)]
        for reader in members:
            remote = f"docker://{reader.host}/{repo}"
            digest = skopeo(
                "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"{remote}:v1"
            )
            assert digest.strip() == index_digest
            assert json.loads(skopeo("list-tags", "--tls-verify=false", remote))["Tags"] == ["v1"]
        back = tmp_path / f"back{entry}"
        reader = members[(entry + 2) % 3]
        skopeo("copy", "--all", *no_tls, f"docker://{reader.host}/{repo}:v1", f"oci:{back}:v1")
        copied = json.loads((back / "index.json").read_text())["manifests"][0]["digest"]
        assert copied == index_digest
        skopeo("delete", "--tls-verify=false", f"docker://{members[entry].host}/{repo}:v1")
        tags = json.loads(
            skopeo("list-tags", "--tls-verify=false", f"docker://{reader.host}/{repo}")
        )
        assert tags["Tags"] == []


def _rss_peak_kib(member: LiveServer) -> int:
    status = Path(f"/proc/{member.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])


def test_a_large_blob_streams_through_a_proxy_both_ways(members: list[LiveServer]) -> None:
    """256 MiB in chunked PATCHes and one GET through a member that does not own the
    repository: the digest holds, and that member's peak memory grows by far less."""
    entry, repo = members[0], owned_by(1, "stream/big-")
    chunk = os.urandom(1024 * 1024)
    total = 256
    whole = hashlib.sha256()
    for _ in range(total):
        whole.update(chunk)
    digest = f"sha256:{whole.hexdigest()}"
    before = _rss_peak_kib(entry)

    def body() -> Iterator[bytes]:
        for _ in range(total):
            yield chunk

    with httpx.Client(base_url=entry.url, timeout=120) as client:
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        assert location.startswith("/v2/")  # relative: the client stays with this member
        patched = client.patch(
            location, content=body(), headers={"Content-Type": "application/octet-stream"}
        )
        assert patched.status_code == 202, patched.text
        done = client.put(patched.headers["Location"], params={"digest": digest})
        assert done.status_code == 201, done.text
        pulled = hashlib.sha256()
        with client.stream("GET", f"/v2/{repo}/blobs/{digest}") as answer:
            assert answer.status_code == 200
            assert answer.headers["Content-Length"] == str(total * len(chunk))
            for part in answer.iter_bytes():
                pulled.update(part)
    assert f"sha256:{pulled.hexdigest()}" == digest
    assert (members[1].root / repo / "blobs" / "sha256" / whole.hexdigest()).exists()
    assert not (entry.root / repo).exists()
    grown_mib = (_rss_peak_kib(entry) - before) / 1024
    assert grown_mib < 64, f"the proxy's peak memory grew by {grown_mib:.0f} MiB"


def test_credentials_and_errors_pass_through_unchanged(members: list[LiveServer]) -> None:
    repo = owned_by(2, "errors/r-")
    with httpx.Client(base_url=members[0].url, timeout=30) as client:
        missing = client.get(f"/v2/{repo}/manifests/nope")
        assert missing.status_code == 404
        assert missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        bad = client.put(
            f"/v2/{repo}/manifests/v1",
            content=b"{not json",
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert bad.status_code == 400
        assert bad.json()["errors"][0]["code"] == "MANIFEST_INVALID"
        assert not any((m.root / repo).exists() for m in members)  # nothing half-written
        head = client.head(f"/v2/{repo}/blobs/sha256:{'0' * 64}")
        assert head.status_code == 404 and head.content == b""


def test_a_mount_from_another_members_repository_copies_the_blob(
    members: list[LiveServer],
) -> None:
    """The official suite's mount expects 201: the blob is streamed from the source's owner
    to the target's; a source that lacks it gives the spec's fallback, 202 and a session."""
    source, target = owned_by(1, "mount/from-"), owned_by(2, "mount/to-")
    data = os.urandom(3 * 1024 * 1024)
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    with httpx.Client(base_url=members[0].url, timeout=60) as client:
        pushed = client.post(
            f"/v2/{source}/blobs/uploads/", params={"digest": digest}, content=data
        )
        assert pushed.status_code == 201
        mounted = client.post(
            f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source}
        )
        assert mounted.status_code == 201, mounted.text
        assert mounted.headers["Location"] == f"/v2/{target}/blobs/{digest}"
        assert mounted.headers["Docker-Content-Digest"] == digest
        assert client.get(f"/v2/{target}/blobs/{digest}").content == data
        missing = f"sha256:{'1' * 64}"
        fallback = client.post(
            f"/v2/{target}/blobs/uploads/", params={"mount": missing, "from": source}
        )
        assert fallback.status_code == 202
        assert fallback.headers["Location"].startswith(f"/v2/{target}/blobs/uploads/")
    assert (members[2].root / target / "blobs" / "sha256" / digest.split(":")[1]).exists()
    assert not (members[0].root / target).exists()


def test_a_proxied_request_is_never_proxied_again(members: list[LiveServer]) -> None:
    """zot's hop header: the owner answers it; any other member refuses it (508), writing
    nothing, rather than pass it on."""
    repo = owned_by(2, "loop/r-")
    with httpx.Client(base_url=members[0].url, timeout=30) as client:
        refused = client.post(f"/v2/{repo}/blobs/uploads/", headers={HOP: "1"})
        assert refused.status_code == 508
        assert refused.json()["errors"][0]["detail"]["repository"] == repo
    assert not any((m.root / repo).exists() for m in members)
    with httpx.Client(base_url=members[2].url, timeout=30) as owner:
        document = image_manifest(owner, repo)
        answer = owner.put(
            f"/v2/{repo}/manifests/v1",
            content=json.dumps(document).encode(),
            headers={HOP: "1", "Content-Type": document["mediaType"]},
        )
        assert answer.status_code == 201


def test_a_member_down_gives_503_for_its_repositories_only(tmp_path: Path) -> None:
    with three_members(tmp_path) as live:
        down, up = owned_by(2, "down/r-"), owned_by(1, "up/r-")
        with httpx.Client(base_url=live[0].url, timeout=30) as client:
            put_manifest(client, up, "v1", image_manifest(client, up))
            put_manifest(client, down, "v1", image_manifest(client, down))
            live[2].process.terminate()
            live[2].process.wait(timeout=15)
            started = time.monotonic()
            answer = client.get(f"/v2/{down}/manifests/v1")
            assert time.monotonic() - started < 10  # an answer, not a hang
            assert answer.status_code == 503
            error = answer.json()["errors"][0]
            assert error["code"] == "UNAVAILABLE"
            assert error["detail"]["member"] == live[2].host
            assert client.get(f"/v2/{up}/manifests/v1").status_code == 200
            catalog = client.get("/v2/_catalog")
            assert catalog.status_code == 503
            assert catalog.json()["errors"][0]["detail"]["member"] == live[2].host


def test_the_owner_authenticates_the_callers_credentials(tmp_path: Path) -> None:
    from tests.auth.registries import write_htpasswd

    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "wonderland"})
    policy = {
        "repositories": {
            "**": {
                "policies": [
                    {"users": ["alice"], "actions": ["read", "create", "update", "delete"]}
                ]
            }
        }
    }
    http = {"auth": {"htpasswd": {"path": str(htpasswd)}}, "accessControl": policy}
    with three_members(tmp_path / "cluster", {"http": http}) as members:
        repo = owned_by(1, "auth/r-")
        with httpx.Client(base_url=members[0].url, timeout=30) as anonymous:
            challenged = anonymous.get(f"/v2/{repo}/tags/list")
            assert challenged.status_code == 401
            assert challenged.headers["WWW-Authenticate"].startswith("Basic")
            assert challenged.json()["errors"][0]["code"] == "UNAUTHORIZED"
        with httpx.Client(
            base_url=members[0].url, timeout=30, auth=("alice", "wonderland")
        ) as alice:
            put_manifest(alice, repo, "v1", image_manifest(alice, repo))
            assert alice.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]
            assert alice.get("/v2/_catalog").json()["repositories"] == [repo]
        with httpx.Client(base_url=members[2].url, timeout=30) as anonymous:
            # each member keeps what the caller may read: an anonymous caller, nothing
            assert anonymous.get("/v2/_catalog").json()["repositories"] == []
        with httpx.Client(base_url=members[2].url, timeout=30, auth=("alice", "wrong")) as wrong:
            assert wrong.get(f"/v2/{repo}/tags/list").status_code == 401
        assert (members[1].root / repo / "index.json").exists()
