"""A full disk or storage the registry may not write answers a clear OCI error, not a 500, and
what crashed processes left behind is cleaned at start."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.config import Config
from ocireg.storage.driver import FileWriter
from ocireg.storage.filesystem import temp_suffix
from ocireg.storage.memory import MemoryDriver
from tests.liveserver import live_server
from tests.oci import canonical, error_codes, push_blob, sha256

OCTET = {"Content-Type": "application/octet-stream"}


class FailingDriver(MemoryDriver):
    """The memory driver, whose writes fail with ``failure`` once it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: int | None = None

    def _fail(self, path: str) -> None:
        if self.failure is not None:
            raise OSError(self.failure, os.strerror(self.failure), f"/storage/{path}")

    def put_content(self, path: str, data: bytes) -> None:
        self._fail(path)
        super().put_content(path, data)

    def writer(self, path: str, append: bool = False) -> FileWriter:
        self._fail(path)
        return super().writer(path, append)


def _answer(driver: FailingDriver, method: str, url: str, **options: Any) -> httpx.Response:
    """The answer of the ASGI app on ``driver`` (the other tests run a live server)."""
    with warnings.catch_warnings():
        # connexion's imports use deprecated jsonschema and starlette names; not ours to fix
        warnings.simplefilter("ignore")
        from ocireg.app import create_app

    config = Config.model_validate({"storage": {"rootDirectory": "/unused"}})
    app = create_app(config, driver)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            return await client.request(method, url, **options)

    return asyncio.run(call())


@pytest.mark.parametrize(
    ("failure", "status", "reason"),
    [
        (errno.ENOSPC, 507, "storage is full"),
        (errno.EDQUOT, 507, "storage is full"),
        (errno.EACCES, 503, "storage is not writable"),
        (errno.EPERM, 503, "storage is not writable"),
        (errno.EROFS, 503, "storage is not writable"),
    ],
)
@pytest.mark.parametrize("what", ["monolithic blob", "manifest"])
def test_storage_failures_are_clear_oci_errors(
    failure: int, status: int, reason: str, what: str
) -> None:
    driver = FailingDriver()
    driver.failure = failure
    if what == "manifest":
        document = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
        options: dict[str, Any] = {
            "content": canonical({**document, "manifests": []}),
            "headers": {"Content-Type": document["mediaType"]},
        }
        response = _answer(driver, "PUT", "/v2/full/repo/manifests/v1", **options)
    else:
        data = b"layer"
        params = {"digest": sha256(data)}
        url = "/v2/full/repo/blobs/uploads/"
        response = _answer(driver, "POST", url, params=params, content=data, headers=OCTET)
    assert response.status_code == status, response.text
    assert error_codes(response) == ["UNAVAILABLE"]
    [error] = response.json()["errors"]
    assert error["detail"] == {"reason": reason, "errno": errno.errorcode[failure]}
    assert "/storage/" not in response.text  # where the storage lives is for the log only


def test_other_storage_failures_stay_500() -> None:
    driver = FailingDriver()
    driver.failure = errno.EIO
    response = _answer(driver, "POST", "/v2/io/repo/blobs/uploads/")
    assert response.status_code == 500


def test_a_full_disk_during_a_chunk_is_507_logged_and_writes_nothing(tmp_path: Path) -> None:
    """The real filesystem driver, on a session whose file writes fail as on a full disk."""
    with live_server(tmp_path) as server, httpx.Client(base_url=server.url) as client:
        push_blob(client, "disk/repo", b"so the repository exists")
        location = client.post("/v2/disk/repo/blobs/uploads/").headers["Location"]
        session = server.root / "disk" / "repo" / ".uploads" / location.rsplit("/", 1)[-1]
        session.unlink()
        session.symlink_to("/dev/full")  # every write: ENOSPC
        response = client.patch(location, content=os.urandom(200_000), headers=OCTET)
        assert response.status_code == 507, response.text
        assert error_codes(response) == ["UNAVAILABLE"]
        assert response.json()["errors"][0]["detail"]["errno"] == "ENOSPC"
        logged = [json.loads(line) for line in server.log_lines() if "storage failure" in line]
        assert [(entry["errno"], entry["file"]) for entry in logged] == [("ENOSPC", str(session))]
        assert logged[0]["level"] == "error"


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_temporary_files_left_by_a_crash_are_removed_at_start(tmp_path: Path) -> None:
    """Removed: one named after a process of this host that is gone, and one of unknown origin
    older than an hour. Kept: one of a live process, and a recent one of unknown origin (a
    worker of another host may be writing it)."""
    folder = tmp_path / "data" / "crash" / "repo" / "blobs" / "sha256"
    folder.mkdir(parents=True)
    orphan = folder / f"{'a' * 64}{temp_suffix(_dead_pid())}"
    old = folder.parent.parent / "index.json.tmp-0123456789abcdef0123456789abcdef"
    live = folder / f"{'b' * 64}{temp_suffix(os.getpid())}"
    recent = folder / f"{'c' * 64}.tmp-fedcba9876543210fedcba9876543210"
    for path in (orphan, old, live, recent):
        path.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    with live_server(tmp_path) as server:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any("start-up cleanup done" in line for line in server.log_lines()):
                break
            time.sleep(0.1)
        assert (orphan.exists(), old.exists(), live.exists(), recent.exists()) == (
            False,
            False,
            True,
            True,
        )
        [done] = [json.loads(line) for line in server.log_lines() if "cleanup done" in line]
        assert done["temporaryFiles"] == 2
