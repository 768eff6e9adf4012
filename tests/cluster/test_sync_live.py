"""Periodic sync in a cluster: every member runs the round, each copying only the
repositories it owns (as zot's sync does), so each mirrored repository lands on its owner."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from ocireg.cluster.hashing import owner_index
from ocireg.conformance.layout import build_multiarch_layout
from tests.cluster.members3 import HASH_KEY, three_members
from tests.ext.sync.upstreams import credentials_file, upstream_registry

pytestmark = pytest.mark.e2e


def test_each_member_mirrors_only_the_repositories_it_owns(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    build_multiarch_layout(layout, "v1")
    repos = [f"mirror/app{k}" for k in range(6)]
    assert {owner_index(HASH_KEY, 3, r) for r in repos} == {0, 1, 2}
    with upstream_registry(tmp_path / "upstream") as upstream:
        for repo in repos:
            upstream.push(layout, "v1", repo, "v1")
        creds = credentials_file(tmp_path / "creds.json", upstream)
        registry = {
            "urls": [upstream.url],
            "content": [{"prefix": "/mirror/**"}],
            "pollInterval": "1h",
            "tlsVerify": False,
        }
        sync = {"credentialsFile": str(creds), "registries": [registry]}
        with three_members(tmp_path / "cluster", {"extensions": {"sync": sync}}) as members:
            deadline = time.monotonic() + 90
            while True:
                listed = httpx.get(members[0].url + "/v2/_catalog", timeout=30).json()
                if listed.get("repositories") == repos or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert listed["repositories"] == repos
            for repo in repos:
                owner = owner_index(HASH_KEY, 3, repo)
                stored = [(m.root / repo / "index.json").exists() for m in members]
                assert stored == [i == owner for i in range(3)], repo
