"""``ocireg serve`` leaves out the parts of connexion and httpx it never uses and defers the
ones it may use, and still answers: connexion's and httpx's own fallbacks for a missing part
take over, and a deferred library is there, whole, when it is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

# The CLI's serve command in a process of its own (what it leaves out lasts the process), with
# the server's loop replaced by requests through the app that serve built (uvicorn's Config
# loaded as for listening): one as uvicorn makes it, then what is loaded, then the deferred
# libraries used.
_SERVE_ONCE = """
import asyncio, json, sys, types

async def get(app, path):
    sent = []
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [], "http_version": "1.1", "scheme": "http",
             "server": ("127.0.0.1", 5000), "client": ("127.0.0.1", 1), "root_path": ""}
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await app(scope, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]).get(b"docker-distribution-api-version")

def run_once(server):
    server.config.load()  # what uvicorn does before it listens
    serve_once(server.config.loaded_app)
    server.started = True

def serve_once(app):
    status, api = asyncio.run(get(app, "/v2/"))
    libraries = ("flask", "rich", "pygments", "httpx._main", "urllib3", "connexion", "httpx",
                 "jinja2", "requests", "starlette.testclient", "starlette.templating",
                 "werkzeug.serving", "werkzeug.test", "urllib.request", "watchfiles", "click",
                 "uvicorn", "uvicorn.main", "websockets", "multiprocessing", "werkzeug",
                 "importlib.metadata", "werkzeug.wrappers", "werkzeug.wsgi",
                 "werkzeug.http",
                 # configuration sections the file leaves out (ocireg.sections), OpenID
                 "ocireg.auth.settings", "ocireg.auth.policyconfig", "ocireg.cluster.settings",
                 "ocireg.retentionconfig", "ocireg.storage.s3config", "ocireg.auth.openid",
                 "ocireg.auth.openidconfig", "ocireg.auth.bearerconfig",
                 # settings of extensions the file does not configure (Extension.settings)
                 "ocireg.ext.events.settings", "ocireg.ext.sync.settings",
                 "ocireg.ext.search.settings")
    kinds = {name: type(sys.modules[name]).__name__ for name in libraries
             if sys.modules.get(name) is not None}
    status_json, _ = asyncio.run(get(app, "/openapi.json"))  # connexion's spec server
    import importlib.util  # as ocireg.extensions.loading checks an extension's requirements

    found = [importlib.util.find_spec(name) is not None for name in kinds if name != "connexion"]
    still = sorted(name for name in kinds if type(sys.modules[name]).__name__ == "_StandIn")

    import urllib.request
    import werkzeug
    from connexion import json_schema  # holds the stand-in for requests
    from starlette.testclient import TestClient
    from werkzeug.wrappers import Request

    with TestClient(app) as client:  # the stand-in class builds the real client
        through_client = client.get("/v2/").status_code
    print(json.dumps({
        "status": status,
        "api": api.decode(),
        "spec": status_json,
        "kinds": kinds,
        "found": [found, still],
        "used": [
            json_schema.requests.codes.ok,  # imports it, whole, through the stand-in
            "urllib3" in sys.modules,
            type(sys.modules["requests"]).__name__,
            urllib.request.url2pathname("/a%20b"),
            type(werkzeug.Request({})) is Request,  # the stand-in class builds a real one
            werkzeug.run_simple.__module__,
            werkzeug.exceptions.NotFound.code,
            list(werkzeug.local.ClosingIterator([1, 2])),  # the stand-in class builds one
            through_client,
        ],
    }))

def patch_server():  # once serve has imported it, after what for_serving does
    import ocireg.server

    ocireg.server._Server.run = run_once

from ocireg import unused

for_serving = unused.for_serving

def for_serving_then_patch():
    for_serving()
    patch_server()

unused.for_serving = for_serving_then_patch

from ocireg.launch import main  # the ocireg command's entry point

sys.argv = ["ocireg", "serve", sys.argv[1]]
sys.exit(main())
"""


def test_serve_leaves_out_and_defers_what_it_does_not_use(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"storage": {"rootDirectory": str(tmp_path / "data")}}))
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_ONCE, str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # as a shell starts it: pydantic's switch unset, so the command defers importlib.metadata
        env={k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"},
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert (answer["status"], answer["api"], answer["spec"]) == (200, "registry/2.0", 200)
    # Loaded only as stand-ins (or packages whose __init__ has not run) after start and the
    # first requests; the rest (click, websockets, multiprocessing, the models of sections
    # the file does not have, ...) not at all.
    assert answer["kinds"] == {
        "connexion": "module",
        "uvicorn": "_Package",
        "werkzeug": "_Package",
        "httpx": "_StandIn",
        "jinja2": "_StandIn",
        "requests": "_StandIn",
        "starlette.testclient": "_StandIn",
        "starlette.templating": "_StandIn",
        "urllib.request": "_StandIn",
        "werkzeug.wsgi": "_StandIn",
        # imported for pydantic's plugins when there are any, else not used at all
        "importlib.metadata": "module" if entry_points(group="pydantic") else "_StandIn",
    }
    deferred = sorted(name for name, kind in answer["kinds"].items() if kind == "_StandIn")
    # every one is found, and the stand-ins are still not imported
    assert answer["found"] == [[True] * (len(answer["kinds"]) - 1), deferred]
    used = [200, True, "module", "/a b", True, "werkzeug.serving", 404, [1, 2], 200]
    assert answer["used"] == used
