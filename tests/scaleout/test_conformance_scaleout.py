"""Our conformance suite against each of three instances on one bucket and one database, and
against a round-robin proxy over the three, which moves every upload session (and each
push's manifest and blob requests) between instances."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.scaleout.instances import Shared, instances
from tests.scaleout.roundrobin import round_robin

pytestmark = pytest.mark.e2e
WORKFLOWS = "pull,push,discovery,management,main"
NAMESPACES = [f"conformance/instance{k}" for k in range(3)]


def _conformance(url: str, namespace: str) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "ocireg", "conformance", "--url", url,
            "--namespace", namespace, "--workflows", WORKFLOWS, "--schema", "strict",
            "--automatic-crossmount", "true",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, f"{url}\n{done.stdout}\n{done.stderr}"
    assert "result: passed" in done.stdout


def test_the_suite_passes_on_each_instance_and_through_a_round_robin_proxy(
    tmp_path: Path, shared: Shared
) -> None:
    with instances(tmp_path, shared.config()) as servers:
        with ThreadPoolExecutor(len(servers)) as runs:  # one run per instance, at once
            list(runs.map(_conformance, [s.url for s in servers], NAMESPACES))
        with round_robin([server.url for server in servers], tmp_path) as url:
            _conformance(url, "conformance/proxied")
        for server in servers:  # every instance took its turns, upload sessions among them
            proxied = [line for line in server.log_lines() if "conformance/proxied" in line]
            assert sum("/blobs/uploads/" in line for line in proxied) > 10
