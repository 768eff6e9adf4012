"""scrub: a flipped byte in a stored blob is reported by the background scrub and offline."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.liveserver import LiveServer, live_server, write_config
from tests.oci import image_manifest, put_manifest, sha256


def flip_a_byte(root: Path, repo: str, digest: str) -> None:
    path = root / repo / "blobs" / "sha256" / digest.split(":")[1]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def scrub_lines(server: LiveServer) -> list[dict[str, str]]:
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    return [line for line in lines if line.get("msg") == "scrub"]


def test_background_scrub_reports_each_image(tmp_path: Path) -> None:
    sections = {"extensions": {"scrub": {"interval": "300ms"}}}
    with live_server(tmp_path, sections) as live, httpx.Client(base_url=live.url) as client:
        put_manifest(client, "scrub/app", "good", image_manifest(client, "scrub/app"))
        layer = b"a layer that will rot"
        put_manifest(client, "scrub/app", "bad", image_manifest(client, "scrub/app", [layer]))
        flip_a_byte(live.root, "scrub/app", sha256(layer))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            by_reference = {line["reference"]: line for line in scrub_lines(live)}
            if {"good", "bad"} <= set(by_reference):
                break
            time.sleep(0.1)
    assert by_reference["good"]["status"] == "ok"
    bad = by_reference["bad"]
    assert (bad["status"], bad["affectedBlob"], bad["level"]) == (
        "affected",
        sha256(layer),
        "error",
    )
    assert bad["repo"] == "scrub/app"


def test_offline_scrub_prints_a_table_and_exits_1_when_affected(tmp_path: Path) -> None:
    with live_server(tmp_path) as live, httpx.Client(base_url=live.url) as client:
        layer = b"offline layer"
        put_manifest(client, "offline/app", "v1", image_manifest(client, "offline/app", [layer]))
    (tmp_path / "cli").mkdir()
    config = write_config(tmp_path / "cli", live.root, 5000, None)
    command = [sys.executable, "-m", "ocireg", "scrub", str(config)]
    clean = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.splitlines()[1].split() == ["offline/app", "v1", "ok"]
    assert clean.stderr.strip() == "1 image(s) checked, 0 affected"
    flip_a_byte(live.root, "offline/app", sha256(layer))
    rotten = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert rotten.returncode == 1
    header, row = rotten.stdout.splitlines()
    assert header.split()[:3] == ["REPOSITORY", "REFERENCE", "STATUS"]
    assert row.split()[:4] == ["offline/app", "v1", "affected", sha256(layer)]
    assert row.endswith("content does not match its digest")
