"""The log of ``ocireg serve``: every line one JSON object (ours, uvicorn's, anyone's), and each
start-up warning said once."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ocireg.logs import JsonLines
from tests.liveserver import LiveServer, live_server, write_config

MD5_USER = "old:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/"  # htpasswd -m: never checked


def _md5_htpasswd(directory: Path) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "htpasswd"
    path.write_text(MD5_USER + "\n")
    return {
        "http": {"auth": {"htpasswd": {"path": str(path)}}},
        # a zot key ocireg does not implement: warned about at start
        "storage": {"cacheDriver": {"name": "redis", "url": "redis://localhost:6379"}},
    }


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines, "nothing was logged"
    parsed = [json.loads(line) for line in lines]  # a line that is not JSON fails here
    assert all(isinstance(line, dict) for line in parsed)
    return parsed


def _count(server: LiveServer, msg: str) -> int:
    return sum(line["msg"] == msg for line in server.log_events())


def _send_garbage(server: LiveServer) -> bytes:
    host, port = server.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        return sock.recv(4096)


def _serve_on_a_taken_port(directory: Path, port: int) -> subprocess.CompletedProcess[str]:
    """A second server on the first one's port (with a root of its own)."""
    directory.mkdir()
    config = write_config(directory, directory / "data", port, None)
    return subprocess.run(
        [sys.executable, "-m", "ocireg", "serve", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_line_is_json_whoever_writes_it(tmp_path: Path) -> None:
    with live_server(tmp_path / "first", _md5_htpasswd(tmp_path / "first")) as server:
        assert _send_garbage(server).startswith(b"HTTP/1.1 400 ")
        port = int(server.host.rsplit(":", 1)[1])
        second = _serve_on_a_taken_port(tmp_path / "second", port)
    assert second.returncode == 3
    assert second.stdout == ""
    refused = [line for line in _json_lines(second.stderr) if line["level"] == "error"]
    assert [line["logger"] for line in refused] == ["uvicorn.error"]
    assert "address already in use" in refused[0]["msg"]

    lines = _json_lines(server.log.read_text())
    invalid = [line for line in lines if line["msg"] == "Invalid HTTP request received."]
    assert [(line["level"], line["logger"]) for line in invalid] == [("warn", "uvicorn.error")]
    assert {"time", "level", "msg", "pid"} <= set(lines[0])
    # uvicorn's own start and stop chatter is left out: ocireg's start and stop lines say it
    assert not [
        line
        for line in lines
        if line.get("logger", "").startswith("uvicorn.") and line["level"] == "info"
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_each_start_up_warning_is_said_once(tmp_path: Path, workers: int) -> None:
    """The htpasswd file is read to check it before listening and again by each worker that
    serves it; its problems are said once, as are the configuration's."""
    extra = _md5_htpasswd(tmp_path)
    extra["http"]["workers"] = workers
    with live_server(tmp_path, extra) as server:
        deadline = time.monotonic() + 60
        while _count(server, "scheduler started") < workers:  # each worker has built its app
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.2)
    lines = _json_lines(server.log.read_text())
    md5 = [line for line in lines if line.get("format") == "Apache MD5 ($apr1$)"]
    assert [(line["msg"], line["user"]) for line in md5] == [
        ("htpasswd user can never log in: unsupported hash format", "old")
    ]
    ignored = [line for line in lines if "storage.cacheDriver: not implemented yet" in line["msg"]]
    assert len(ignored) == 1
    assert ignored[0]["level"] == "warn"


def test_a_foreign_record_with_a_traceback_is_one_line() -> None:
    try:
        raise ValueError("two\nlines")
    except ValueError:
        record = logging.LogRecord(
            "asyncio", logging.ERROR, __file__, 1, "Task %s failed", ("t-1",), sys.exc_info()
        )
    text = JsonLines().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert (line["level"], line["logger"], line["msg"]) == ("error", "asyncio", "Task t-1 failed")
    assert (
        line["exception"].startswith("Traceback") and "ValueError: two\nlines" in line["exception"]
    )
