"""Periodic sync against a real upstream (docker-registry with htpasswd): the catalog walked,
content rules applied, images, referrers and legacy cosign tags copied, Docker images converted
once and not copied again by later rounds."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.conformance.layout import build_multiarch_layout
from ocireg.registry.mediatypes import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST
from tests.ext.sync.upstreams import (
    PASSWORD,
    USER,
    Upstream,
    credentials_file,
    inspect_digest,
    mirror,
    raw,
    single_image_layout,
    upstream_registry,
)
from tests.liveserver import LiveServer

pytestmark = pytest.mark.e2e
ARTIFACT = "application/vnd.example.sbom.v1+json"
MiB = 1 << 20


def periodic(url: str, credentials: Path, content: list[dict[str, Any]], **more: Any) -> Any:
    registry = {"urls": [url], "content": content, "pollInterval": "1h", "tlsVerify": False, **more}
    return {"credentialsFile": str(credentials), "registries": [registry]}


def push_referrer(upstream: Upstream, repo: str, subject: str, size: int, tag: str) -> str:
    """An artifact about ``subject``, pushed by hand with the referrers tag schema's index at
    ``tag`` (distribution 2.8 has no referrers API), as oras does against it."""
    with httpx.Client(base_url=upstream.url, auth=(USER, PASSWORD), timeout=30) as client:
        empty = b"{}"
        empty_digest = "sha256:" + hashlib.sha256(empty).hexdigest()
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        location = started.headers["location"]
        target = f"{location}{'&' if '?' in location else '?'}digest={empty_digest}"
        client.put(target, content=empty).raise_for_status()
        descriptor = {"mediaType": OCI_EMPTY, "digest": empty_digest, "size": 2}
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": ARTIFACT,
            "config": descriptor,
            "layers": [descriptor],
            "subject": {"mediaType": OCI_INDEX, "digest": subject, "size": size},
        }
        data = json.dumps(manifest).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        headers = {"Content-Type": OCI_MANIFEST}
        client.put(f"/v2/{repo}/manifests/{digest}", content=data, headers=headers)
        entry = {
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": len(data),
            "artifactType": ARTIFACT,
        }
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})
        answer = client.put(
            f"/v2/{repo}/manifests/{tag}", content=index, headers={"Content-Type": OCI_INDEX}
        )
        answer.raise_for_status()
        return digest


def tags_of(server: LiveServer, repo: str) -> list[str]:
    answer = httpx.get(f"{server.url}/v2/{repo}/tags/list", timeout=10)
    return sorted(answer.json().get("tags") or []) if answer.status_code == 200 else []


def wait_for_tags(server: LiveServer, repo: str, wanted: set[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not wanted <= set(tags_of(server, repo)):
        assert time.monotonic() < deadline, f"{repo}: {tags_of(server, repo)}"
        time.sleep(0.1)


def test_a_round_copies_what_the_rules_select_with_referrers(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    index_digest = build_multiarch_layout(layout, "v1")
    size = len((layout / "blobs" / "sha256" / index_digest.split(":")[1]).read_bytes())
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "library/multi", "v1")
        upstream.push(layout, "v1", "library/multi", "v2-rc")
        upstream.push(layout, "v1", "other/multi", "v1")
        hexdigest = index_digest.split(":")[1]
        referrer = push_referrer(
            upstream, "library/multi", index_digest, size, f"sha256-{hexdigest}"
        )
        signature = push_referrer(
            upstream, "library/multi", index_digest, size, f"sha256-{hexdigest}.sig"
        )
        creds = credentials_file(tmp_path / "creds.json", upstream)
        rules = [
            {
                "prefix": "/library/**",
                "destination": "/mirrored",
                "stripPrefix": True,
                "tags": {"regex": "^v", "excludeRegex": "-rc$"},
            }
        ]
        with mirror(tmp_path / "mirror", periodic(upstream.url, creds, rules)) as server:
            wait_for_tags(server, "mirrored/multi", {"v1", f"sha256-{hexdigest}.sig"})
            assert "v2-rc" not in tags_of(server, "mirrored/multi")
            catalog = httpx.get(f"{server.url}/v2/_catalog", timeout=10).json()
            assert catalog["repositories"] == ["mirrored/multi"]
            remote = f"docker://{server.host}/mirrored/multi:v1"
            assert inspect_digest(upstream.skopeo, remote) == index_digest
            listed = httpx.get(
                f"{server.url}/v2/mirrored/multi/referrers/{index_digest}", timeout=10
            ).json()
            assert {m["digest"] for m in listed["manifests"]} == {referrer, signature}
            assert {m["artifactType"] for m in listed["manifests"]} == {ARTIFACT}


def test_later_rounds_do_not_copy_a_converted_image_again(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    build_multiarch_layout(layout, "v1", arches=("amd64",))
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "dock/one", "v1", "--format", "v2s2")
        creds = credentials_file(tmp_path / "creds.json", upstream)
        sync = periodic(upstream.url, creds, [{"prefix": "**"}], pollInterval="1s")
        with mirror(tmp_path / "mirror", sync) as server:
            wait_for_tags(server, "dock/one", {"v1"})
            remote = f"docker://{server.host}/dock/one:v1"
            first = raw(upstream.skopeo, remote)
            assert first["mediaType"] == OCI_INDEX
            rounds = lambda: [  # noqa: E731
                e
                for e in server.log_events()
                if e["msg"] == "sync repository checked" and e["repo"] == "dock/one"
            ]
            deadline = time.monotonic() + 30
            while len(rounds()) < 3:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            stored = [e for e in server.log_events() if e["msg"] == "sync image stored"]
            assert len([e for e in stored if e["tags"] == ["v1"]]) == 1
            assert raw(upstream.skopeo, remote) == first


def complete(repo: Path) -> bool:
    """Whether every manifest the repository lists has all its blobs (nothing half-copied)."""
    index = json.loads((repo / "index.json").read_text())
    blobs = repo / "blobs" / "sha256"
    for entry in index["manifests"]:
        manifest = json.loads((blobs / entry["digest"].split(":")[1]).read_bytes())
        for blob in [manifest["config"], *manifest["layers"]]:
            if not (blobs / blob["digest"].split(":")[1]).exists():
                return False
    return True


def test_a_mirror_killed_during_a_round_finishes_it_after_restart(tmp_path: Path) -> None:
    names = [f"many/app{n}" for n in range(6)]
    with upstream_registry(tmp_path / "upstream") as upstream:
        for n, name in enumerate(names):
            single_image_layout(tmp_path / f"layout{n}", "v1", 4 * MiB)
            upstream.push(tmp_path / f"layout{n}", "v1", name, "v1")
        digests = {name: upstream.digest(name, "v1") for name in names}
        creds = credentials_file(tmp_path / "creds.json", upstream)
        sync = periodic(upstream.url, creds, [{"prefix": "/many/**"}])
        with mirror(tmp_path / "mirror", sync) as server:
            deadline = time.monotonic() + 60
            while not any(e["msg"] == "sync image stored" for e in server.log_events()):
                assert time.monotonic() < deadline
                time.sleep(0.02)
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
            stored = [n for n in names if (server.root / n / "index.json").exists()]
            assert all(complete(server.root / n) for n in stored)
            first = [n for n in names if tags_of_root(server.root / n)]
            assert len(first) < len(names)  # killed in the middle of the round
        with mirror(tmp_path / "mirror", sync) as again:
            for name in names:
                wait_for_tags(again, name, {"v1"})
                remote = f"docker://{again.host}/{name}:v1"
                assert inspect_digest(upstream.skopeo, remote) == digests[name]
            assert any(e["msg"] == "sync round resumed" for e in again.log_events())


def tags_of_root(repo: Path) -> list[str]:
    if not (repo / "index.json").exists():
        return []
    index = json.loads((repo / "index.json").read_text())
    return [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
