"""Sync when the upstream misbehaves: errors and rate limits are retried, a body cut in the
middle of a blob resumes or leaves nothing half-copied, wrong credentials fail until the
credentials file is put right, without a restart."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.ext.sync.faults import faulty_proxy
from tests.ext.sync.upstreams import (
    Upstream,
    credentials_file,
    inspect_digest,
    mirror,
    raw,
    single_image_layout,
    skopeo,
    upstream_registry,
)

pytestmark = pytest.mark.e2e
MiB = 1 << 20


def on_demand(url: str, credentials: Path, **more: object) -> dict[str, object]:
    registry = {
        "urls": [url],
        "onDemand": True,
        "tlsVerify": False,
        "maxRetries": 3,
        "retryDelay": "50ms",
        "manifestCheckInterval": "0s",
        **more,
    }
    return {"credentialsFile": str(credentials), "registries": [registry]}


def upstream_layer(upstream: Upstream, repo: str, tag: str) -> tuple[str, int]:
    """The layer as the upstream holds it (skopeo compresses it on the way in)."""
    (layer,) = raw(upstream.skopeo, f"docker://{upstream.host}/{repo}:{tag}", creds=True)["layers"]
    return layer["digest"], layer["size"]


def stored_size(path: Path) -> int:
    """The size of a blob once stored: a pull that followed the download may end (every byte
    sent) a moment before the download's digest check and commit."""
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} was not stored"
        time.sleep(0.05)
    return path.stat().st_size


def pull(tool: str, ref: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool, "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{out}:x"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_500_and_429_are_retried_with_back_off(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    single_image_layout(layout, "v1", 64 * 1024)
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "flaky/app", "v1")
        digest = upstream.digest("flaky/app", "v1")
        with faulty_proxy(upstream.url) as (proxy, faults):
            creds = credentials_file(tmp_path / "creds.json", proxy)
            with mirror(tmp_path / "mirror", on_demand(proxy, creds)) as server:
                # the first three upstream requests for the image fail, whichever they are (the
                # mirror may fetch blobs in the background once it has the manifest): within
                # maxRetries, so the pull succeeds
                faults.where, faults.statuses = "/v2/flaky/app/", [500, 429, 503]
                assert inspect_digest(upstream.skopeo, f"docker://{server.host}/flaky/app:v1") == (
                    digest
                )
                result = pull(upstream.skopeo, f"{server.host}/flaky/app:v1", tmp_path / "out")
                assert result.returncode == 0, result.stderr
                retries = [e for e in server.log_events() if "retry" in e["msg"]]
                failures = [e["failure"] for e in retries]
                assert all(f"answered {status}" in failures for status in (500, 429, 503))
                assert not faults.statuses  # every injected failure was met


def test_a_blob_cut_in_the_middle_resumes_and_the_pull_never_notices(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    single_image_layout(layout, "v1", 8 * MiB)
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "big/app", "v1")
        layer, size = upstream_layer(upstream, "big/app", "v1")
        with faulty_proxy(upstream.url) as (proxy, faults):
            creds = credentials_file(tmp_path / "creds.json", proxy)
            with mirror(tmp_path / "mirror", on_demand(proxy, creds)) as server:
                faults.cut_after = 3 * MiB
                result = pull(upstream.skopeo, f"{server.host}/big/app:v1", tmp_path / "out")
                assert result.returncode == 0, result.stderr
                assert faults.cuts == 1
                ranges = [r for method, path, r in faults.seen if layer in path and r]
                assert ranges and ranges[0].startswith("bytes=")
                stored = server.root / "big/app/blobs/sha256" / layer.split(":")[1]
                assert stored_size(stored) == size


def test_a_blob_cut_without_retries_leaves_nothing_half_copied(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    single_image_layout(layout, "v1", 8 * MiB)
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "big/app", "v1")
        layer, size = upstream_layer(upstream, "big/app", "v1")
        with faulty_proxy(upstream.url) as (proxy, faults):
            creds = credentials_file(tmp_path / "creds.json", proxy)
            with mirror(tmp_path / "mirror", on_demand(proxy, creds, maxRetries=0)) as server:
                faults.cut_after = 3 * MiB
                result = pull(upstream.skopeo, f"{server.host}/big/app:v1", tmp_path / "out")
                assert result.returncode != 0
                repo = server.root / "big/app"
                assert not (repo / "blobs/sha256" / layer.split(":")[1]).exists()
                index = json.loads((repo / "index.json").read_text())
                assert index["manifests"] == []  # no image without its layer
                # the next pull finishes the job
                result = pull(upstream.skopeo, f"{server.host}/big/app:v1", tmp_path / "again")
                assert result.returncode == 0, result.stderr
                assert stored_size(repo / "blobs/sha256" / layer.split(":")[1]) == size


def test_wrong_credentials_fail_until_the_file_is_put_right(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    single_image_layout(layout, "v1", 1024)
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "private/app", "v1")
        digest = upstream.digest("private/app", "v1")
        creds = credentials_file(tmp_path / "creds.json", upstream, password="wrong")
        with mirror(tmp_path / "mirror", on_demand(upstream.url, creds)) as server:
            ref = f"{server.host}/private/app:v1"
            failed = pull(upstream.skopeo, ref, tmp_path / "out")
            assert failed.returncode != 0
            assert "manifest unknown" in failed.stderr
            credentials_file(tmp_path / "creds.json", upstream)
            assert inspect_digest(upstream.skopeo, f"docker://{ref}") == digest
            loaded = [e for e in server.log_events() if e["msg"] == "sync credentials loaded"]
            assert len(loaded) == 2
            skopeo(
                upstream.skopeo,
                "copy",
                "--src-tls-verify=false",
                f"docker://{ref}",
                f"oci:{tmp_path / 'ok'}:x",
            )


def test_concurrent_pulls_share_one_download_of_each_blob(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    single_image_layout(layout, "v1", 16 * MiB)
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "shared/app", "v1")
        layer, size = upstream_layer(upstream, "shared/app", "v1")
        with faulty_proxy(upstream.url) as (proxy, faults):
            creds = credentials_file(tmp_path / "creds.json", proxy)
            sync = on_demand(proxy, creds, manifestCheckInterval="1h")
            with mirror(tmp_path / "mirror", sync) as server, ThreadPoolExecutor(4) as pool:
                ref = f"{server.host}/shared/app:v1"
                pulls = [
                    pool.submit(pull, upstream.skopeo, ref, tmp_path / f"out{n}") for n in range(4)
                ]
                for each in pulls:
                    result = each.result()
                    assert result.returncode == 0, result.stderr
            answered = [(path, status) for method, path, status in faults.answered if status == 200]
            assert len([path for path, _ in answered if layer in path]) == 1
            assert len([path for path, _ in answered if path.endswith("/manifests/v1")]) == 1
            for n in range(4):
                assert (
                    tmp_path / f"out{n}" / "blobs/sha256" / layer.split(":")[1]
                ).stat().st_size == size


def test_a_failing_upstream_never_turns_a_local_hit_into_an_error(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    single_image_layout(layout, "v1", 1024)
    with upstream_registry(tmp_path / "upstream") as upstream:
        upstream.push(layout, "v1", "kept/app", "v1")
        upstream.push(layout, "v1", "junk/app", "v1")
        digest = upstream.digest("kept/app", "v1")
        with faulty_proxy(upstream.url) as (proxy, faults):
            creds = credentials_file(tmp_path / "creds.json", proxy)
            sync = on_demand(proxy, creds, maxRetries=1)
            with mirror(tmp_path / "mirror", sync) as server:
                remote = f"docker://{server.host}/kept/app:v1"
                assert inspect_digest(upstream.skopeo, remote) == digest
                ok = pull(upstream.skopeo, f"{server.host}/kept/app:v1", tmp_path / "out")
                assert ok.returncode == 0, ok.stderr
                faults.where, faults.statuses = "/v2/", [500] * 100  # every check fails now
                assert inspect_digest(upstream.skopeo, remote) == digest
                assert faults.statuses  # it was asked (interval 0), and failed
                faults.statuses = []
                faults.garbage = "/junk/app/manifests/"
                answer = httpx.get(f"{server.url}/v2/junk/app/manifests/v1", timeout=30)
                assert answer.status_code == 404, answer.text
                assert answer.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
            failed = [e for e in server.log_events() if e["msg"] == "sync on demand failed"]
            assert {e["repo"] for e in failed} == {"kept/app", "junk/app"}
