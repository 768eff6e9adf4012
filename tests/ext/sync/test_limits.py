"""syncTimeout, reqConcurrent and reqPerSec, seen from the upstream's side while a client pulls
through an on-demand mirror: a slow body is cut off, requests in flight stay under the cap, and
request starts are spaced by the rate."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.ext.sync.stub import Stub, stub_upstream
from tests.ext.sync.upstreams import mirror
from tests.liveserver import LiveServer

ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


def on_demand(stub: Stub, **keys: Any) -> dict[str, Any]:
    return {"registries": [{"urls": [stub.url], "onDemand": True, **keys}]}


def pull_blob(server: LiveServer, digest: str) -> bytes:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        answer = client.get(f"/v2/repo/blobs/{digest}")
        assert answer.status_code == 200, answer.text
        return answer.content


def pull_image(server: LiveServer, stub: Stub) -> None:
    """The manifest, then every layer at once, each checked against the upstream's bytes."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert client.get("/v2/repo/manifests/v1", headers=ACCEPT).status_code == 200
    with ThreadPoolExecutor(len(stub.layers)) as pool:
        pulled = list(pool.map(lambda digest: pull_blob(server, digest), stub.layers))
    assert pulled == [stub.blobs[digest] for digest in stub.layers]


def test_sync_timeout_cuts_off_a_body_that_stalls(tmp_path: Path) -> None:
    with stub_upstream(layer_size=1 << 20) as stub:
        stub.stall = 3.0  # each blob body stops half-way for 3 s: no read stalls for 60 s
        with mirror(tmp_path, on_demand(stub, syncTimeout="1s")) as server:
            (layer,) = stub.layers
            with httpx.Client(base_url=server.url, timeout=60) as client:
                try:
                    answer = client.get(f"/v2/repo/blobs/{layer}")
                    complete = answer.status_code == 200 and len(answer.content) == 1 << 20
                except httpx.HTTPError:  # the body ended short of its Content-Length
                    complete = False
            assert not complete
            failed = [e for e in server.log_events() if e["msg"] == "sync blob failed"]
            assert failed and "syncTimeout (1 s)" in failed[0]["error"]
            digest = layer.split(":")[1]
            assert not (server.root / "repo" / "blobs" / "sha256" / digest).exists()
            # the same body without the stall is served whole: only the time cut it off
            stub.stall = 0.0
            assert pull_blob(server, layer) == stub.blobs[layer]


def test_req_concurrent_caps_the_requests_in_flight(tmp_path: Path) -> None:
    with stub_upstream(layers=6) as stub:
        stub.hold = 0.3  # each blob answer takes a while, so requests overlap if allowed to
        with mirror(tmp_path, on_demand(stub, reqConcurrent=2)) as server:
            pull_image(server, stub)
        assert stub.most_in_flight == 2


def test_req_per_sec_spaces_the_requests(tmp_path: Path) -> None:
    with stub_upstream(layers=4) as stub:
        with mirror(tmp_path, on_demand(stub, reqPerSec=5, reqConcurrent=10)) as server:
            pull_image(server, stub)
        starts = sorted(started for started, _ in stub.starts)
        # the manifest and the layers the client pulled (the config may still be on its way)
        assert len(starts) >= 1 + len(stub.layers)
        # 1/5 s apart: the whole run takes that long for each gap (a gap alone may look
        # shorter by the network's and threads' jitter; a burst would take no time at all)
        assert starts[-1] - starts[0] >= 0.8 * (len(starts) - 1) / 5, starts
