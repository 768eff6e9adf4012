"""The worked GraphQL example in docs/extensions.md: its query, run against a registry holding
the image it describes, answers what the page shows."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from tests.liveserver import live_server
from tests.oci import image_manifest, put_manifest

DOC = Path(__file__).resolve().parents[2] / "docs" / "extensions.md"
DESCRIPTION = "A tiny demo image"


def documented() -> tuple[str, dict[str, object]]:
    """The example's query (from its curl command) and its answer."""
    text = DOC.read_text()
    command = re.search(r"```console\n\$ (curl .*?)\n```", text, re.S)
    answer = re.search(r"```json\n(\{\"data\": \{\"GlobalSearch\".*?)\n```", text, re.S)
    assert command is not None and answer is not None, "the worked example is missing"
    body = re.search(r"-d '(\{.*\})'", command[1], re.S)
    assert body is not None
    return json.loads(body[1])["query"], json.loads(answer[1])


def test_the_worked_example_answers_as_documented(tmp_path: Path) -> None:
    query, answer = documented()
    sections = {"extensions": {"search": {"enable": True}}}
    with (
        live_server(tmp_path, sections) as live,
        httpx.Client(base_url=live.url, timeout=60) as client,
    ):
        document = image_manifest(
            client,
            "demo/app",
            layers=[b"demo layer"],
            annotations={"org.opencontainers.image.description": DESCRIPTION},
        )
        put_manifest(client, "demo/app", "1.0", document)
        got = {}
        for _ in range(50):  # the meta DB follows pushes within about a second
            got = client.post("/v2/_zot/ext/search", json={"query": query}).json()
            if got.get("data", {}).get("GlobalSearch", {}).get("Repos"):
                break
            time.sleep(0.1)
    assert got == answer
