"""The README's commands are the ones CI runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from tests.liveserver import live_server
from tests.tools import require_binary

ROOT = Path(__file__).resolve().parent.parent


def _block_after(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1]
    match = re.search(r"```sh\n(.+?)\n```", section, re.S)
    assert match, f"no sh block after {heading!r}"
    return match[1].strip()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = _block_after("## Run the tests")
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines()


def test_ci_requires_end_to_end_tests() -> None:
    assert "export OCIREG_REQUIRE_E2E=1" in (ROOT / ".ci" / "run").read_text()


def test_readme_start_command_uses_the_embedded_default() -> None:
    first = _block_after("## Install and start").splitlines()[0]
    assert first == "python3 -m venv .venv && . .venv/bin/activate && pip install . && ocireg serve"


def test_try_it_works_against_a_fresh_registry(tmp_path: Path) -> None:
    """The README's "Try it" block, run as written against a registry of its own port."""
    curl = require_binary("curl", "apt-get install curl")
    block = _block_after("Try it from another terminal")
    with live_server(tmp_path) as live:
        script = block.replace("http://127.0.0.1:5000", live.url).replace("curl ", f"{curl} -sS ")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert '{"repositories":["demo"]}' in done.stdout
        manifest = httpx.get(f"{live.url}/v2/demo/manifests/v1").json()
        assert manifest["artifactType"] == "application/vnd.example.demo"
