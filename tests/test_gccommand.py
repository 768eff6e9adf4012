"""``ocireg gc CONFIG [--dry-run]`` on a root filled by pushes over HTTP, with the server
running (the command is safe beside it) and after it stopped."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.cli import main
from ocireg.gccommand import human
from tests.liveserver import live_server, write_config
from tests.oci import canonical, image_manifest, put_manifest, sha256

GONE_LAYER = b"a layer of the deleted image" * 1000
KEPT_LAYER = b"a layer that stays"
UNTAGGED = b"a layer of an untagged image"
SHORT_DELAY = {"storage": {"gcDelay": "1s", "gcInterval": "1h"}}
# The server's own GC, which runs a first round within 30 s of start, takes nothing of what
# the tests make old (5 s); the command reads a copy of its configuration with a short delay.
SERVER = {"storage": {"gcDelay": "1h"}}


def ocireg_gc(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it, its output piped (not a terminal)."""
    command = [sys.executable, "-m", "ocireg", "gc", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def removals(output: str) -> list[str]:
    """The lines naming what went, without the verb ("removed" or "would remove")."""
    lines = [line for line in output.splitlines() if line.startswith(("removed ", "would remove "))]
    return [re.sub(r"^(removed|would remove) +", "", line) for line in lines]


def age(root: Path, seconds: float = 5.0) -> None:
    """Make everything under ``root`` older than the test's gcDelay (1 s)."""
    then = time.time() - seconds
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(Path(folder) / name, (then, then))


def test_dry_run_lists_what_the_run_then_removes_and_a_second_run_finds_nothing(
    tmp_path: Path,
) -> None:
    with live_server(tmp_path, SERVER) as live, httpx.Client(base_url=live.url) as client:
        put_manifest(client, "team/kept", "v1", image_manifest(client, "team/kept", [KEPT_LAYER]))
        document = image_manifest(client, "team/gone", [GONE_LAYER])
        digest = put_manifest(client, "team/gone", "v1", document).headers["Docker-Content-Digest"]
        old = image_manifest(client, "team/kept", [UNTAGGED])
        untagged = put_manifest(client, "team/kept", "old", old).headers["Docker-Content-Digest"]
        assert client.delete("/v2/team/gone/manifests/v1").status_code == 202
        assert client.delete("/v2/team/kept/manifests/old").status_code == 202
        age(live.root)
        (tmp_path / "cli").mkdir()
        config = write_config(tmp_path / "cli", live.root, 5000, SHORT_DELAY)

        dry = ocireg_gc(config, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert dry.stderr == ""  # piped: no progress line
        assert client.get("/v2/_catalog").json()["repositories"] == ["team/gone", "team/kept"]
        assert client.head(f"/v2/team/gone/blobs/{sha256(GONE_LAYER)}").status_code == 200

        real = ocireg_gc(config)
        assert real.returncode == 0, real.stderr
        assert removals(real.stdout) == removals(dry.stdout)
        listed = removals(real.stdout)
        assert f"manifest    team/gone@{digest}  {len(canonical(document))} B" in listed
        assert f"blob        team/gone@{sha256(GONE_LAYER)}  27.3 KiB" in listed
        assert f"manifest    team/kept@{untagged}  {len(canonical(old))} B" in listed
        assert "repository  team/gone (empty)" in listed
        assert not any(sha256(KEPT_LAYER) in line for line in listed)
        # the config is shared with team/kept (dedupe): named, but not freed
        freed = len(canonical(document)) + len(GONE_LAYER) + len(canonical(old)) + len(UNTAGGED)
        assert real.stdout.splitlines()[-1] == (
            f"freed {human(freed)} in 5 blobs across 2 repositories "
            "(2 manifests, 1 empty repository removed)"
        )
        assert dry.stdout.splitlines()[-1] == real.stdout.splitlines()[-1].replace(
            "freed", "would free", 1
        )

        # what a client sees, from the server that kept running meanwhile
        assert client.get("/v2/_catalog").json()["repositories"] == ["team/kept"]
        assert client.get("/v2/team/gone/tags/list").status_code == 404
        assert client.get(f"/v2/team/kept/manifests/{untagged}").status_code == 404
        assert client.get(f"/v2/team/kept/blobs/{sha256(KEPT_LAYER)}").content == KEPT_LAYER
        assert not (live.root / "team" / "gone").exists()

        again = ocireg_gc(config)
        assert again.returncode == 0, again.stderr
        assert again.stdout == "freed 0 B in 0 blobs across 0 repositories\n"

        # the repository comes back when pushed again
        put_manifest(client, "team/gone", "v2", image_manifest(client, "team/gone", [b"anew"]))
        assert client.get("/v2/_catalog").json()["repositories"] == ["team/gone", "team/kept"]


def test_young_content_stays_and_a_stopped_server_makes_no_difference(tmp_path: Path) -> None:
    minute = {"storage": {"gcDelay": "1m"}}
    with live_server(tmp_path, minute) as live, httpx.Client(base_url=live.url) as client:
        put_manifest(client, "young", "v1", image_manifest(client, "young", [b"young"]))
        assert client.delete("/v2/young/manifests/v1").status_code == 202
    result = ocireg_gc(tmp_path / "config.json")  # gcDelay has not passed: nothing goes
    assert result.returncode == 0, result.stderr
    assert result.stdout == "freed 0 B in 0 blobs across 0 repositories\n"
    age(live.root, 120)
    result = ocireg_gc(tmp_path / "config.json")
    assert "repository  young (empty)" in removals(result.stdout)
    with live_server(tmp_path, minute) as live, httpx.Client(base_url=live.url) as client:
        assert client.get("/v2/_catalog").json()["repositories"] == []


def test_background_gc_removes_an_emptied_repository_from_the_catalog(tmp_path: Path) -> None:
    sections = {"storage": {"gcDelay": "1s", "gcInterval": "300ms"}}
    with live_server(tmp_path, sections) as live, httpx.Client(base_url=live.url) as client:
        put_manifest(client, "bg/app", "v1", image_manifest(client, "bg/app", [b"bg"]))
        put_manifest(client, "bg/kept", "v1", image_manifest(client, "bg/kept", [b"kept"]))
        assert client.delete("/v2/bg/app/manifests/v1").status_code == 202
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if client.get("/v2/_catalog").json()["repositories"] == ["bg/kept"]:
                break
            time.sleep(0.1)
        assert client.get("/v2/_catalog").json()["repositories"] == ["bg/kept"]
        assert not (live.root / "bg" / "app").exists()
        lines = [json.loads(line) for line in live.log_lines() if line.startswith("{")]
        assert any(line.get("msg") == "gc done" and line.get("removedRepository") for line in lines)


def _config(tmp_path: Path, **storage: Any) -> Path:
    path = write_config(tmp_path, tmp_path / "data", 5000, {"storage": storage})
    (tmp_path / "data").mkdir(exist_ok=True)
    return path


def test_outside_the_time_window_a_run_is_refused_but_a_dry_run_goes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hour = time.gmtime().tm_hour
    window = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"  # closed now
    config = _config(tmp_path, gcTimeWindow=window)
    assert main(["gc", str(config)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{config}: storage.gcTimeWindow: outside {window} (UTC), opens in ")
    assert line.endswith("; --ignore-window collects now")
    assert main(["gc", str(config), "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("would free 0 B")
    assert main(["gc", str(config), "--ignore-window"]) == 0


def test_a_root_with_gc_off_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, gc=False)
    assert main(["gc", str(config)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "storage: gc is off, skipped\n"


def test_a_bad_configuration_gets_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo"
    config = write_config(tmp_path, missing, 5000, None)
    assert main(["gc", str(config)]) == 1
    assert capsys.readouterr().err == (
        f"{config}: storage.rootDirectory: {missing}: not a directory\n"
    )
    assert not missing.exists()  # nothing made where the typo points
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"storage": {"rootDirectory": str(tmp_path), "gcDelai": "1s"}}))
    assert main(["gc", str(bad)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{bad}: storage.gcDelai: unknown key")


def test_help_says_which_rules_apply(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["gc", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for rule in ("gcDelay", "retention", "referrer", "gc: false", "gcTimeWindow", "dedupe"):
        assert rule in text
    assert "Safe while a server runs on the same root" in text


def test_on_a_terminal_a_progress_line_counts_repositories(tmp_path: Path) -> None:
    config = _config(tmp_path, gcDelay="1h")
    for repo in ("one", "two"):
        (tmp_path / "data" / repo / "blobs").mkdir(parents=True)
        (tmp_path / "data" / repo / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        (tmp_path / "data" / repo / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    terminal, attached = pty.openpty()
    try:
        command = [sys.executable, "-m", "ocireg", "gc", str(config), "--dry-run"]
        done = subprocess.run(command, stderr=attached, stdout=subprocess.PIPE, timeout=60)
        os.close(attached)
        shown = b""
        while chunk := _read(terminal):
            shown += chunk
    finally:
        os.close(terminal)
    assert done.returncode == 0
    assert b"\rgc storage: 0/2 repositories" in shown
    assert b"\rgc storage: 2/2 repositories" in shown
    assert shown.endswith(b"\r\x1b[K")  # the line is cleared at the end
    assert b"repositories" not in done.stdout.split(b"\n")[0]  # stdout: no progress


def _read(terminal: int) -> bytes:
    try:
        return os.read(terminal, 4096)
    except OSError:  # EIO: the other end is closed and everything was read
        return b""
