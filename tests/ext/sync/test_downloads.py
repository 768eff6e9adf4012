"""A pull through an on-demand mirror that falls behind the download: the download runs on
without it, and the pull is then served the rest from the stored file, byte for byte: over
plain TCP as file regions sent by zero copy (``sendfile``), over TLS read into a few reused
blocks."""

from __future__ import annotations

import hashlib
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.certs import issue_server, make_ca
from tests.ext.sync.stub import stub_upstream
from tests.liveserver import live_server

MiB = 1 << 20


@pytest.mark.parametrize("tls", [False, True], ids=["zero-copy", "tls"])
def test_a_pull_behind_the_download_gets_every_byte_from_the_file(
    tmp_path: Path, tls: bool
) -> None:
    extra: dict[str, Any] = {}
    verify: ssl.SSLContext | bool = False
    if tls:
        ca = make_ca(tmp_path, "ca")
        cert = issue_server(ca, tmp_path)
        extra["http"] = {"tls": {"cert": str(cert.cert_path), "key": str(cert.key_path)}}
        verify = ssl.create_default_context(cafile=ca.cert_path)
    with stub_upstream(layer_size=24 * MiB + 5, varied=True) as stub:
        extra["extensions"] = {"sync": {"registries": [{"urls": [stub.url], "onDemand": True}]}}
        with live_server(tmp_path / "mirror", extra) as server:
            (layer,) = stub.layers
            hasher, received = hashlib.sha256(), 0
            with (
                httpx.Client(base_url=server.url, timeout=60, verify=verify) as client,
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
