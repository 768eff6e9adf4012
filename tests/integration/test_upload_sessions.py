"""Upload sessions leave nothing behind and are capped per repository and per client."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tests.liveserver import LiveServer, live_server
from tests.oci import error_codes, push_blob, sha256

OCTET = {"Content-Type": "application/octet-stream"}


def _caps(per_repository: int | None, per_client: int | None, **http: Any) -> dict[str, Any]:
    return {
        "http": {
            "maxUploadSessionsPerRepository": per_repository,
            "maxUploadSessionsPerClient": per_client,
            **http,
        }
    }


def _lock_files(server: LiveServer) -> list[str]:
    return sorted(path.name for path in (server.root / ".ocireg" / "locks").iterdir())


def _start(client: httpx.Client, repo: str) -> httpx.Response:
    return client.post(f"/v2/{repo}/blobs/uploads/")


def _refused_by(response: httpx.Response, cap: str) -> None:
    assert response.status_code == 429, response.text
    assert error_codes(response) == ["TOOMANYREQUESTS"]
    assert response.json()["errors"][0]["detail"]["cap"] == cap


def test_uploads_leave_no_lock_files(tmp_path: Path) -> None:
    with live_server(tmp_path) as server, httpx.Client(base_url=server.url) as client:
        push_blob(client, "locks/repo", b"first")  # the repository's own lock may stay
        before = _lock_files(server)
        for i in range(10):
            data = os.urandom(100 + i)
            location = _start(client, "locks/repo").headers["Location"]
            patched = client.patch(location, content=data[:50], headers=OCTET)
            assert patched.status_code == 202
            rest = {"digest": sha256(data)}
            done = client.put(location, params=rest, content=data[50:], headers=OCTET)
            assert done.status_code == 201
            cancelled = _start(client, "locks/repo").headers["Location"]
            client.patch(cancelled, content=b"x", headers=OCTET)
            assert client.delete(cancelled).status_code == 204
            bad = client.post(
                "/v2/locks/repo/blobs/uploads/",
                params={"digest": sha256(b"other")},
                content=data,
                headers=OCTET,
            )
            assert bad.status_code == 400
        assert _lock_files(server) == before


def test_sessions_per_repository_are_capped(tmp_path: Path) -> None:
    with (
        live_server(tmp_path, _caps(3, None)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        locations = [_start(client, "capped/repo").headers["Location"] for _ in range(3)]
        _refused_by(_start(client, "capped/repo"), "http.maxUploadSessionsPerRepository")
        data = b"monolithic"
        monolithic = client.post(
            "/v2/capped/repo/blobs/uploads/",
            params={"digest": sha256(data)},
            content=data,
            headers=OCTET,
        )
        _refused_by(monolithic, "http.maxUploadSessionsPerRepository")
        assert _start(client, "capped/other").status_code == 202  # another repository
        assert client.delete(locations[0]).status_code == 204  # an ended session frees a place
        assert _start(client, "capped/repo").status_code == 202
        finished = client.put(locations[1], params={"digest": sha256(b"")})
        assert finished.status_code == 201
        assert _start(client, "capped/repo").status_code == 202


def test_the_repository_cap_holds_across_workers(tmp_path: Path) -> None:
    with live_server(tmp_path, _caps(5, None, workers=2)) as server:

        def start(_: int) -> int:
            # a fresh connection each time, so the kernel spreads them over both workers
            with httpx.Client(base_url=server.url, timeout=60) as client:
                return _start(client, "workers/repo").status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(start, range(20)))
        assert sorted(statuses) == [202] * 5 + [429] * 15
        sessions = list((server.root / "workers" / "repo" / ".uploads").iterdir())
        assert len(sessions) == 5


def test_sessions_per_client_are_capped(tmp_path: Path) -> None:
    with (
        live_server(tmp_path, _caps(None, 4)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        locations = [_start(client, f"client/repo{i}").headers["Location"] for i in range(4)]
        refused = _start(client, "client/fresh")
        _refused_by(refused, "http.maxUploadSessionsPerClient")
        catalog = client.get("/v2/_catalog").json()["repositories"]
        assert "client/fresh" not in catalog  # a refused start creates no repository
        assert client.put(locations[0], params={"digest": sha256(b"")}).status_code == 201
        assert _start(client, "client/fresh").status_code == 202


def test_lock_files_left_by_a_crash_are_removed_at_start(tmp_path: Path) -> None:
    locks = tmp_path / "data" / ".ocireg" / "locks"
    locks.mkdir(parents=True)
    left = [locks / f"{i:040x}.lock" for i in range(50)]
    for path in left:
        path.touch()
    with live_server(tmp_path) as server:
        # The files go first; the log line follows once temporary files are swept too.
        def done() -> bool:
            logged = any('"start-up cleanup done"' in line for line in server.log_lines())
            return logged and not any(path.exists() for path in left)

        deadline = time.monotonic() + 20
        while not done() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(path.exists() for path in left)
        assert any('"start-up cleanup done"' in line for line in server.log_lines())
