"""downloadDir: blobs are staged there and then stored; what a killed mirror left there is gone
after it starts again; verify refuses a directory that cannot be used, naming the key."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.cli import main
from tests.ext.sync.stub import Stub, stub_upstream
from tests.ext.sync.upstreams import mirror

ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
MiB = 1 << 20


def wait_for(predicate: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def staged(download_dir: Path) -> list[Path]:
    """Every file the mirrors keep in ``download_dir``, their locks aside."""
    return [p for p in download_dir.rglob("*") if p.is_file() and p.name != ".lock"]


def sync(stub: Stub, download_dir: Path) -> dict[str, Any]:
    entry = {"urls": [stub.url], "onDemand": True, "manifestCheckInterval": "0s"}
    return {"downloadDir": str(download_dir), "registries": [entry]}


def test_a_download_is_staged_then_stored_and_a_crash_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    download_dir = tmp_path / "downloads"
    with stub_upstream(layer_size=MiB) as stub:
        (layer,) = stub.layers
        stub.stall = 60.0  # the first mirror dies half-way through the layer
        with mirror(tmp_path / "mirror", sync(stub, download_dir)) as server:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                assert client.get("/v2/repo/manifests/v1", headers=ACCEPT).status_code == 200
            wait_for(lambda: any(p.stat().st_size == MiB // 2 for p in staged(download_dir)))
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
        left = staged(download_dir)
        assert left, "the killed mirror left its half-downloaded layer"
        stub.stall = 0.0
        with mirror(tmp_path / "mirror", sync(stub, download_dir)) as server:
            assert not any(path.exists() for path in left)  # swept at start-up
            (own,) = [p for p in download_dir.iterdir() if p.name.startswith("ocireg-sync-")]
            with httpx.Client(base_url=server.url, timeout=60) as client:
                answer = client.get(f"/v2/repo/blobs/{layer}")
            assert answer.status_code == 200 and answer.content == stub.blobs[layer]
            stored = server.root / "repo" / "blobs" / "sha256" / layer.split(":")[1]
            wait_for(stored.exists)
            assert stored.read_bytes() == stub.blobs[layer]
            wait_for(lambda: staged(download_dir) == [])  # staged only until stored
            assert [p.name for p in own.iterdir()] == [".lock"]
        assert list(download_dir.iterdir()) == []  # a mirror that stops removes its own


@pytest.mark.parametrize(
    ("where", "why"),
    [("relative/dir", "must be an absolute path"), ("{file}/sub", "is not a directory")],
)
def test_verify_refuses_an_unusable_download_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, why: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    entry = {"urls": ["https://up.example"], "onDemand": True}
    sync = {"downloadDir": where.format(file=a_file), "registries": [entry]}
    path = tmp_path / "zot.json"
    path.write_text(
        json.dumps({"storage": {"rootDirectory": str(tmp_path)}, "extensions": {"sync": sync}})
    )
    assert main(["verify", str(path)]) != 0
    (line,) = [
        line.removeprefix(f"{path}: ")
        for line in capsys.readouterr().err.splitlines()
        if "downloadDir" in line
    ]
    assert line.startswith("extensions.sync.downloadDir: ") and why in line
