"""Three instances on one bucket and one database: skopeo pushes through one and pulls through
another, a third deletes; after each step the catalog, the tags list and search give the same
answer from all three."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.conformance.layout import build_multiarch_layout
from tests.liveserver import LiveServer
from tests.scaleout.instances import Shared, instances, run_skopeo, settled

pytestmark = pytest.mark.e2e
REPO = "scale/app"
NO_TLS = ("--src-tls-verify=false", "--dest-tls-verify=false")
SEARCH = "/v2/_zot/ext/search"
IMAGES = '{ ImageList(repo: "scale/app") { Results { RepoName Tag Digest } } }'
REPOS = "{ RepoListWithNewestImage { Results { Name } } }"


def view(server: LiveServer) -> dict[str, Any]:
    """What a client sees of the registry from one instance."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        tags = client.get(f"/v2/{REPO}/tags/list")
        images = client.post(SEARCH, json={"query": IMAGES}).json()
        repos = client.post(SEARCH, json={"query": REPOS}).json()
        return {
            "catalog": client.get("/v2/_catalog").json()["repositories"],
            "tags": sorted(tags.json().get("tags") or []) if tags.status_code == 200 else None,
            "images": sorted(
                (i["Tag"], i["Digest"]) for i in images["data"]["ImageList"]["Results"]
            ),
            "repos": sorted(r["Name"] for r in repos["data"]["RepoListWithNewestImage"]["Results"]),
        }


def agreed(servers: list[LiveServer], expected: dict[str, Any]) -> None:
    """Every instance shows ``expected`` (search within a few seconds: meta DB flushes)."""
    views = settled(
        lambda: [view(server) for server in servers],
        lambda views: all(v == expected for v in views),
    )
    assert views == [expected] * len(servers)


def blobs(layout: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


def test_push_through_one_pull_through_another_delete_through_a_third(
    skopeo: str, shared: Shared, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    v1 = build_multiarch_layout(source / "v1", "v1")
    v2 = build_multiarch_layout(source / "v2", "v2", arches=("amd64", "arm64", "s390x"))
    with instances(tmp_path, shared.config()) as (one, two, three):
        servers = [one, two, three]
        agreed(servers, {"catalog": [], "tags": None, "images": [], "repos": []})

        for tag in ("v1", "v2"):
            remote = f"docker://{one.host}/{REPO}:{tag}"
            run_skopeo(skopeo, "copy", "--all", *NO_TLS, f"oci:{source / tag}:{tag}", remote)
        pushed = {"catalog": [REPO], "tags": ["v1", "v2"], "repos": [REPO]}
        agreed(servers, {**pushed, "images": [("v1", v1), ("v2", v2)]})

        back = tmp_path / "back"
        run_skopeo(
            skopeo, "copy", "--all", *NO_TLS, f"docker://{two.host}/{REPO}:v2", f"oci:{back}:v2"
        )
        pulled = json.loads((back / "index.json").read_text())["manifests"]
        assert [m["digest"] for m in pulled] == [v2]
        assert blobs(back) == blobs(
            source / "v2"
        )  # every manifest, config and layer, byte for byte

        deleted = httpx.delete(f"{three.url}/v2/{REPO}/manifests/{v1}", timeout=30)
        assert deleted.status_code == 202, deleted.text
        agreed(servers, {**pushed, "tags": ["v2"], "images": [("v2", v2)]})
        for server in servers:
            gone = httpx.get(f"{server.url}/v2/{REPO}/manifests/v1", timeout=30)
            assert gone.status_code == 404
            assert gone.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
