"""``ocireg serve`` leaves out the parts of connexion and httpx it never uses, and still
answers: connexion's and httpx's own fallbacks for a missing part take over. requests is
imported only when used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# The CLI's serve command in a process of its own (what it leaves out lasts the process), with
# the server loop replaced by one request through the app that serve would have run.
_SERVE_ONCE = """
import json, sys, types

def serve_once(config):
    from starlette.testclient import TestClient
    from ocireg.app import create_app

    with TestClient(create_app(config)) as client:
        response = client.get("/v2/")
    libraries = ("flask", "rich", "pygments", "httpx._main", "urllib3", "connexion", "httpx")
    loaded = [name for name in libraries if sys.modules.get(name) is not None]
    from connexion import json_schema  # holds the stand-in for requests

    print(json.dumps({
        "status": response.status_code,
        "api": response.headers.get("Docker-Distribution-API-Version"),
        "loaded": loaded,
        "requests": [
            json_schema.requests.codes.ok,  # imports it, whole, through the stand-in
            "urllib3" in sys.modules,
            type(sys.modules["requests"]).__name__,
        ],
    }))

server = types.ModuleType("ocireg.server")
server.serve = serve_once
sys.modules["ocireg.server"] = server

from ocireg.cli import main

sys.exit(main(["serve", sys.argv[1]]))
"""


def test_serve_runs_without_flask_httpx_command_line_or_requests(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"storage": {"rootDirectory": str(tmp_path / "data")}}))
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_ONCE, str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert (answer["status"], answer["api"]) == (200, "registry/2.0")
    assert answer["loaded"] == ["connexion", "httpx"]
    assert answer["requests"] == [200, True, "module"]
