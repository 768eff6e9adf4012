"""skopeo (Debian) against a live ocireg: copy a multi-arch index in and out, inspect, list
tags, delete, and read the storage directory directly as an OCI layout."""

from __future__ import annotations

import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ocireg.conformance.layout import build_multiarch_layout
from tests.liveserver import LiveServer
from tests.oci import canonical, image_manifest, put_manifest, sha256

pytestmark = pytest.mark.e2e


def run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_copy_in_inspect_list_delete_copy_back(
    skopeo: str, server: LiveServer, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    index_digest = build_multiarch_layout(source, "v1")
    remote = f"docker://{server.host}/skopeo/multi"
    no_tls = ("--src-tls-verify=false", "--dest-tls-verify=false")

    run(skopeo, "copy", "--all", *no_tls, f"oci:{source}:v1", f"{remote}:v1")
    run(skopeo, "copy", "--all", *no_tls, f"oci:{source}:v1", f"{remote}:v2")

    raw = json.loads(run(skopeo, "inspect", "--tls-verify=false", "--raw", f"{remote}:v1"))
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert len(raw["manifests"]) == 2
    digest = run(skopeo, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"{remote}:v1")
    assert digest.strip() == index_digest
    arm = json.loads(
        run(skopeo, "inspect", "--tls-verify=false", "--override-arch", "arm64", f"{remote}:v1")
    )
    assert arm["Architecture"] == "arm64"

    tags = json.loads(run(skopeo, "list-tags", "--tls-verify=false", remote))
    assert sorted(tags["Tags"]) == ["v1", "v2"]

    # The storage directory is itself an OCI layout that skopeo reads directly.
    local = json.loads(run(skopeo, "inspect", "--raw", f"oci:{server.root}/skopeo/multi:v1"))
    assert local == raw

    back = tmp_path / "back"
    run(skopeo, "copy", "--all", *no_tls, f"{remote}:v1", f"oci:{back}:v1")
    copied = json.loads((back / "index.json").read_text())["manifests"][0]["digest"]
    assert copied == index_digest

    run(skopeo, "delete", "--tls-verify=false", f"{remote}:v1")
    after = json.loads(run(skopeo, "list-tags", "--tls-verify=false", remote))
    assert after["Tags"] == []  # v2 pointed at the same index digest, deleted with it
    failed = subprocess.run(
        [skopeo, "inspect", "--tls-verify=false", "--raw", f"{remote}:v1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode != 0


def test_skopeo_reads_the_storage_layout_in_the_middle_of_a_tag_burst(
    skopeo: str, server: LiveServer
) -> None:
    repo = "skopeo/burst"
    with httpx.Client(base_url=server.url, timeout=60) as setup:
        document = image_manifest(setup, repo)
        put_manifest(setup, repo, "b-0", document)
    digest = sha256(canonical(document))
    stop = threading.Event()

    def burst() -> int:
        pushed = 0
        with httpx.Client(base_url=server.url, timeout=60) as client:
            while not stop.is_set():
                pushed += 1
                put_manifest(client, repo, f"b-{pushed}", document)
        return pushed

    with ThreadPoolExecutor(4) as pool:
        pushers = [pool.submit(burst) for _ in range(3)]
        try:
            for _ in range(5):  # each inspection reads index.json while pushes replace it
                inspected = run(
                    skopeo, "inspect", "--format", "{{.Digest}}", f"oci:{server.root}/{repo}:b-0"
                )
                assert inspected.strip() == digest
        finally:
            stop.set()
        assert all(pusher.result() > 0 for pusher in pushers)
