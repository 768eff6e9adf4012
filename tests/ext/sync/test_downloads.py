"""A pull through an on-demand mirror that falls behind the download: the download runs on
without it, and the pull is then served the rest from the stored file, byte for byte: over
plain TCP as file regions sent by zero copy (``sendfile``), over TLS read into a few reused
blocks."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import threading
import time
import warnings
from pathlib import Path
from typing import Any, cast
from unittest import mock
from unittest.mock import ANY

import httpx
import pytest

from ocireg.ext.sync.downloads import Download, UpstreamError, _follow_regions, _in_memory
from ocireg.registry.ondemand import FileRegion
from tests.certs import issue_server, make_ca
from tests.ext.sync.stub import stub_upstream
from tests.liveserver import live_server
from tests.rawhttp import Reader, connect, request
from tests.test_zerocopy import serving

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


class _Task:
    """A download's task, finished when the test says."""

    def __init__(self) -> None:
        self.finished = threading.Event()

    def done(self) -> bool:
        return self.finished.is_set()


def _following(path: Path, size: int) -> tuple[Download, _Task]:
    """A download of ``size`` bytes being written to ``path``, as _follow_regions sees it."""
    task = _Task()
    download = Download(cast(Any, None), "repo", cast(Any, "sha256:" + "0" * 64), cast(Any, None))
    download.size, download.task = size, cast(Any, task)
    return download, task


def test_a_finished_download_whose_file_is_short_fails_at_once(tmp_path: Path) -> None:
    """The regions' follower looks past what it sent with a positioned read: no read(1) per
    byte sent (the regions move no file position), which held the event loop a blob long."""
    path = tmp_path / "upload"
    path.write_bytes(b"x" * MiB)
    download, task = _following(path, 2 * MiB)
    task.finished.set()
    looks = 0

    def counted(*args: Any) -> Any:
        nonlocal looks
        looks += 1
        return _in_memory(*args)

    async def follow() -> None:
        parts = _follow_regions(download, path, 2 * MiB)
        assert await anext(parts) == FileRegion(ANY, 0, MiB)
        with mock.patch("ocireg.ext.sync.downloads._in_memory", counted):
            await anext(parts)

    with pytest.raises(UpstreamError, match="ended early"):
        asyncio.run(follow())
    assert looks == 1


def test_a_retry_cutting_the_file_back_under_a_region_in_flight_waits_for_the_rest(
    tmp_path: Path,
) -> None:
    """An attempt that began at 8 MiB (an earlier one broke there) fails at 24 MiB and cuts
    the session file back to 8 MiB while a slow client is behind; the retry writes the bytes
    again. The client gets every byte: what no failure could take back sent by zero copy,
    the rest read, never pages the cut zeroed under a region or a region cut short."""
    data = os.urandom(32 * MiB)
    path = tmp_path / "upload"
    path.write_bytes(data[: 24 * MiB])
    download, task = _following(path, len(data))
    download.kept = 8 * MiB
    sendfiles = 0
    real_sendfile = os.sendfile

    def counted(*args: Any) -> int:
        nonlocal sendfiles
        sendfiles += 1
        return real_sendfile(*args)

    with warnings.catch_warnings():
        # connexion's imports use deprecated jsonschema names; not ours to fix
        warnings.simplefilter("ignore")
        from ocireg.handlers.blobs import PartsResponse

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {"content-length": str(len(data))}
        parts = _follow_regions(download, path, len(data))
        await PartsResponse(parts, headers=headers)(scope, receive, send)

    with (
        mock.patch("os.sendfile", counted),
        serving(app, "uvloop") as port,
        connect(port) as sock,
    ):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        sock.sendall(request())
        time.sleep(0.5)  # the client reads nothing yet: the first region waits for the socket
        with open(path, "r+b") as cut:  # the failed attempt's writer.cancel()
            cut.truncate(8 * MiB)
        got: list[tuple[int, dict[str, str], bytes]] = []
        reading = threading.Thread(target=lambda: got.append(Reader(sock).response()))
        reading.start()
        time.sleep(1.0)  # the client catches up with what the file held; the retry runs
        with open(path, "ab") as retry:
            retry.write(data[8 * MiB :])
        task.finished.set()
        reading.join(30)
    assert got, "the response did not complete"
    status, _, body = got[0]
    assert status == 200
    assert body == data
    assert sendfiles > 1  # the bytes went as regions, by zero copy
