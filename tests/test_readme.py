"""The README's commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

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
    assert _block_after("## Install and start").splitlines()[0] == "pip install . && ocireg serve"
