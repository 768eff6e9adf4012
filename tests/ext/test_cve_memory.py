"""CVE scanning on a registry whose meta DB lives in memory (queries in threads, the CVE
tables in memory too), driven in-process: scanned at push, never scanned, not installed."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocireg.config import Config
from ocireg.storage.memory import MemoryDriver
from tests.ext import osvdata
from tests.oci import image_manifest, put_manifest

STAND_IN = Path(__file__).resolve().parent / "fakeinventory" / "sitecustomize.py"
SEARCH = "/v2/_zot/ext/search"
LIST = '{ CVEListForImage(image: "%s") { Tag Summary { Count MaxSeverity } } }'
IMAGES = '{ ImageList(repo: "%s") { Results { Tag Vulnerabilities { MaxSeverity Count } } } }'

pytestmark = [
    # connexion's import and starlette's test client warn; the live servers import them in
    # their own process, these tests in-process
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Using .httpx. with .starlette.testclient."),
]


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The inventory readers stood in for, as in the live tests (fakeinventory/); the real
    ones, when an earlier test imported them, are put back afterwards."""
    monkeypatch.delitem(sys.modules, "ocireg.ext.cve.inventory", raising=False)
    spec = importlib.util.spec_from_file_location("cve_stand_in", STAND_IN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    finder = sys.meta_path[0]
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.modules.pop("ocireg.ext.cve.inventory", None)


def _client(tmp_path: Path, cve: dict[str, Any]) -> Any:
    """A starlette TestClient (it runs the app's lifespan: the scheduler scans)."""
    from starlette.testclient import TestClient

    from ocireg.app import create_app

    config = Config.model_validate(
        {"storage": {"rootDirectory": str(tmp_path)}, "extensions": {"search": {"cve": cve}}}
    )
    return TestClient(create_app(config, MemoryDriver()))


def _ask(client: Any, query: str) -> Any:
    return client.post(SEARCH, json={"query": query}).json()


def _push(client: Any, reference: str, layer: bytes) -> None:
    repo, tag = reference.split(":")
    put_manifest(client, repo, tag, image_manifest(client, repo, [layer]))


def test_scanned_at_push_and_answered_from_threads(tmp_path: Path, stand_in: None) -> None:
    export = tmp_path / "osv"
    export.mkdir()
    for record in osvdata.ALL:
        (export / f"{record['id']}.json").write_text(json.dumps(record))
    with _client(tmp_path, {"sources": [str(export)]}) as client:
        deadline = time.monotonic() + 30
        _push(client, "mem/app:v1", json.dumps({"inventory": "BULLSEYE"}).encode())
        _push(client, "mem/app:v2", b"not a layer the stand-in knows: the scan fails")
        while "errors" in (found := _ask(client, LIST % "mem/app:v1")) or (
            found["data"]["CVEListForImage"]["Summary"]["Count"] < 8
        ):
            assert time.monotonic() < deadline, found
            time.sleep(0.2)
        assert found["data"]["CVEListForImage"]["Summary"] == {
            "Count": 8, "MaxSeverity": "CRITICAL"
        }  # fmt: skip
        images = _ask(client, IMAGES % "mem/app")["data"]["ImageList"]["Results"]
        assert {i["Tag"]: i["Vulnerabilities"] for i in images} == {
            "v1": {"MaxSeverity": "CRITICAL", "Count": 8},
            "v2": {"MaxSeverity": "", "Count": 0},  # its scan failed: not scanned
        }
