"""The lines that frame a server's life: ``ocireg started`` once it listens, naming what it
serves, and ``ocireg stopped`` with the reason; once, from the parent, with several workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg import __version__
from ocireg.config import Config
from ocireg.lifecycle import auth_methods
from tests.auth.registries import write_htpasswd
from tests.extended import ROOT
from tests.liveserver import LiveServer, free_port, live_server, write_config


def _framing(server: LiveServer) -> list[dict[str, Any]]:
    return [line for line in server.log_events() if line["msg"].startswith("ocireg st")]


def _stop(server: LiveServer, sig: signal.Signals) -> None:
    """Signal the server process alone (not its workers), as ``kill PID`` does."""
    os.kill(server.process.pid, sig)
    server.process.wait(timeout=30)


def test_one_worker_says_what_it_serves_and_why_it_stops(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "alice-pw"})
    extra = {
        "http": {"auth": {"htpasswd": {"path": str(htpasswd)}, "apikey": True}},
        "extensions": {"search": {}},
    }
    with live_server(tmp_path / "one", extra) as server:
        (started,) = _framing(server)
        assert started == {
            "time": started["time"],
            "level": "info",
            "msg": "ocireg started",
            "version": __version__,
            "address": server.url,  # the port it listens on
            "root": str(server.root),
            "workers": 1,
            "extensions": sorted(started["extensions"]),
            "auth": ["htpasswd", "apikey"],
            "pid": server.process.pid,
        }
        assert "search" in started["extensions"]
        _stop(server, signal.SIGTERM)
    stopped = _framing(server)[1:]
    assert [(line["msg"], line["reason"]) for line in stopped] == [("ocireg stopped", "SIGTERM")]
    assert stopped[0]["pid"] == server.process.pid


def test_several_workers_frame_once_from_the_parent(tmp_path: Path) -> None:
    with live_server(tmp_path, {"http": {"workers": 2}}) as server:
        assert httpx.get(server.url + "/v2/").status_code == 200
        (started,) = _framing(server)
        assert (started["workers"], started["address"]) == (2, server.url)
        assert started["pid"] == server.process.pid  # the parent, which holds the socket
        assert started["auth"] == []
        _stop(server, signal.SIGINT)
    lines = _framing(server)
    assert [line["msg"] for line in lines] == ["ocireg started", "ocireg stopped"]
    assert (lines[1]["reason"], lines[1]["pid"]) == ("SIGINT", server.process.pid)


def _config(**http: Any) -> Config:
    return Config.model_validate({"storage": {"rootDirectory": "/unused"}, "http": http})


@pytest.mark.parametrize(
    ("http", "methods"),
    [
        ({}, []),
        (
            {"auth": {"htpasswd": {"path": "/h"}, "ldap": None, "apikey": True}},
            ["htpasswd", "apikey"],
        ),
        (
            {
                "tls": {"cert": "/c", "key": "/k", "cacert": "/ca"},
                "auth": {"htpasswd": {"path": "/h"}},
            },
            ["mtls", "htpasswd"],
        ),
        (
            {"auth": {"openid": {"providers": {"oidc": {"clientid": "c", "issuer": "https://i"}}}}},
            ["apikey", "openid:oidc"],
        ),
    ],
)
def test_the_auth_methods_named(http: dict[str, Any], methods: list[str]) -> None:
    assert auth_methods(_config(**http)) == methods


@pytest.mark.parametrize("workers", [1, 2])
def test_an_app_that_cannot_be_built_is_one_error_line(tmp_path: Path, workers: int) -> None:
    """Exit status 3, and the failure as a JSON line: no traceback of its own, and no worker
    restarted over and over."""
    extra = {"http": {"workers": workers}, "extensions": {"broken": {}}}
    config = write_config(tmp_path, tmp_path / "data", free_port(), extra)
    env = {**os.environ, "OCIREG_EXTENSIONS": "tests.extensions.broken:EXTENSION"}
    env["PYTHONPATH"] = str(ROOT)
    ended = subprocess.run(
        [sys.executable, "-m", "ocireg", "serve", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert ended.returncode == 3
    lines = [json.loads(line) for line in ended.stderr.splitlines()]
    failed = [line for line in lines if line["msg"] == "the app could not be built"]
    assert 1 <= len(failed) <= workers  # each worker that got so far, once
    assert "the broken extension cannot start" in failed[0]["exception"]
    if workers > 1:
        assert lines[-1]["msg"] == "ocireg stopped"
        assert lines[-1]["reason"] == "a worker failed to start"
