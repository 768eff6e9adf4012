"""A pull through an on-demand mirror that falls behind the download: the download runs on
without it, and the pull is then served the rest from the stored file (read into a few reused
blocks), byte for byte."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx

from tests.ext.sync.stub import stub_upstream
from tests.ext.sync.upstreams import mirror

MiB = 1 << 20


def test_a_pull_behind_the_download_gets_every_byte_from_the_file(tmp_path: Path) -> None:
    with stub_upstream(layer_size=24 * MiB + 5, varied=True) as stub:
        sync = {"registries": [{"urls": [stub.url], "onDemand": True}]}
        with mirror(tmp_path, sync) as server:
            (layer,) = stub.layers
            hasher, received = hashlib.sha256(), 0
            with (
                httpx.Client(base_url=server.url, timeout=60) as client,
                client.stream("GET", f"/v2/repo/blobs/{layer}") as answer,
            ):
                assert answer.status_code == 200
                pieces = answer.iter_raw()
                first = next(pieces)
                hasher.update(first)
                received += len(first)
                deadline = time.monotonic() + 30  # the download ends while this pull waits
                while not any(e["msg"] == "sync blob stored" for e in server.log_events()):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                for piece in pieces:
                    hasher.update(piece)
                    received += len(piece)
            assert received == len(stub.blobs[layer])
            assert f"sha256:{hasher.hexdigest()}" == layer
