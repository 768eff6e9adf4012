"""The open-file limit at start (issue 21): ``ocireg serve`` raises its soft limit to the hard
limit (at most 65,536), logs it once, and its worker processes inherit it."""

from __future__ import annotations

import resource
from pathlib import Path

import httpx

from tests.liveserver import live_server


def _soft_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-file limit in /proc")


def _children(pid: int) -> list[int]:
    return [int(each) for each in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_serve_raises_the_soft_open_file_limit(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    assert expected > 512, "the hard limit leaves nothing to raise"
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))  # the server inherits it
    try:
        with live_server(tmp_path, {"http": {"workers": 2}}) as live:
            assert httpx.get(live.url + "/v2/").status_code == 200
            pids = [live.process.pid, *_children(live.process.pid)]
            assert len(pids) >= 3  # the parent, and two workers
            assert {pid: _soft_limit(pid) for pid in pids} == dict.fromkeys(pids, expected)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    raised = [line["msg"] for line in live.log_events() if line["msg"].startswith("open files:")]
    assert raised == [f"open files: soft limit raised from 512 to {expected} (hard limit {shown})"]
