"""The registry end to end on the s3 storage driver, against moto's S3 server: our conformance
suite, skopeo copy in and out, the OCI layout in the bucket, an upload begun on one instance and
finished or cancelled on another, Range, presigned redirects and an s3 sub-path."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ocireg.conformance.layout import build_multiarch_layout
from ocireg.storage.s3 import S3Driver
from tests import rawhttp
from tests.certs import issue_server, make_ca
from tests.liveserver import LiveServer, live_server
from tests.oci import canonical, image_manifest, push_blob, put_manifest
from tests.s3limits import BODY_TIMEOUT, QUICK_TIMEOUT
from tests.s3proxy import StallingProxy
from tests.s3server import ACCESS_KEY, ENV, REGION, SECRET_KEY, S3Endpoint, s3_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, used here by name

pytestmark = pytest.mark.e2e
PREFIX = "registry"


def _driver(endpoint: S3Endpoint, bucket: str, prefix: str = PREFIX) -> S3Driver:
    return S3Driver(
        bucket=bucket,
        region=REGION,
        regionendpoint=endpoint.url,
        rootdirectory=prefix,
        secure=False,
        accesskey=ACCESS_KEY,
        secretkey=SECRET_KEY,
    )


def _s3_config(endpoint: S3Endpoint, bucket: str, **root: Any) -> dict[str, Any]:
    # credentials from the environment (ENV), as zot users often give them
    driver = endpoint.driver_config(bucket, rootdirectory=PREFIX)
    del driver["accesskey"], driver["secretkey"]
    return {"storage": {"storageDriver": driver, "dedupe": True, **root}}


@pytest.fixture(scope="module")
def bucket(s3_endpoint: S3Endpoint) -> str:
    return s3_endpoint.new_bucket()


@pytest.fixture(scope="module")
def s3_server(
    s3_endpoint: S3Endpoint, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("s3-one")
    with live_server(folder, _s3_config(s3_endpoint, bucket), env=ENV) as live:
        _wait_for(live, "start-up cleanup done")
        yield live


@pytest.fixture(scope="module")
def s3_other(
    s3_endpoint: S3Endpoint, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A second instance on the same bucket, with a local directory of its own."""
    folder = tmp_path_factory.mktemp("s3-two")
    with live_server(folder, _s3_config(s3_endpoint, bucket), env=ENV) as live:
        # its start-up cleanup aborts multipart uploads it takes for orphans (moto dates every
        # upload 2010): let it finish before the other instance writes
        _wait_for(live, "start-up cleanup done")
        yield live


def _wait_for(server: LiveServer, message: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(message in line for line in server.log_lines()):
        assert time.monotonic() < deadline, f"no {message!r} in the log"
        time.sleep(0.1)


def run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_conformance_suite_passes_on_s3(s3_server: LiveServer) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "ocireg", "conformance", "--url", s3_server.url,
            "--workflows", "pull,push,discovery,management,main", "--schema", "strict",
            "--automatic-crossmount", "true",
        ],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "result: passed" in done.stdout


def test_skopeo_copies_in_and_out_and_the_bucket_holds_the_layout(
    skopeo: str,
    s3_server: LiveServer,
    s3_endpoint: S3Endpoint,
    bucket: str,
    tmp_path: Path,
) -> None:
    source = tmp_path / "source"
    index_digest = build_multiarch_layout(source, "v1")
    remote = f"docker://{s3_server.host}/skopeo/multi"
    no_tls = ("--src-tls-verify=false", "--dest-tls-verify=false")
    run(skopeo, "copy", "--all", *no_tls, f"oci:{source}:v1", f"{remote}:v1")
    tags = json.loads(run(skopeo, "list-tags", "--tls-verify=false", remote))
    assert tags["Tags"] == ["v1"]
    back = tmp_path / "back"
    run(skopeo, "copy", "--all", *no_tls, f"{remote}:v1", f"oci:{back}:v1")
    assert json.loads((back / "index.json").read_text())["manifests"][0]["digest"] == (index_digest)
    # The same OCI layout per repository, under rootdirectory in the bucket; nothing on disk.
    driver = _driver(s3_endpoint, bucket)
    index = json.loads(driver.get_content("skopeo/multi/index.json"))
    tagged = [entry for entry in index["manifests"] if entry.get("annotations")]
    assert [entry["digest"] for entry in tagged] == [index_digest]
    assert driver.get_content("skopeo/multi/oci-layout") == b'{"imageLayoutVersion":"1.0.0"}'
    algorithm, encoded = index_digest.split(":")
    assert driver.exists(f"skopeo/multi/blobs/{algorithm}/{encoded}")
    assert not (s3_server.root / "skopeo").exists()
    # dedupe by reference (written in the config): layers and configs are zero-byte placeholders
    # whose bytes are in the content store; manifests are stored whole; the mode is recorded
    layers = [e for e in driver.walk("skopeo/multi/blobs") if not e.is_dir and e.size == 0]
    assert layers and all(
        driver.exists(".ocireg/blobs/" + e.path.split("/blobs/")[1]) for e in layers
    )
    assert json.loads(driver.get_content(".ocireg/dedupe.json")) == {"dedupe": True}


def test_an_upload_begun_on_one_instance_is_finished_on_another(
    s3_server: LiveServer, s3_other: LiveServer
) -> None:
    first, second = b"a" * (6 << 20), b"b" * 1000  # past one part, then a small tail
    digest = "sha256:" + hashlib.sha256(first + second).hexdigest()
    repo = "handover/blob"
    with (
        httpx.Client(base_url=s3_server.url, timeout=120) as one,
        httpx.Client(base_url=s3_other.url, timeout=120) as two,
    ):
        location = one.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        patched = one.patch(
            location, content=first, headers={"Content-Range": f"0-{len(first) - 1}"}
        )
        assert patched.status_code == 202
        status = two.get(location)
        assert (status.status_code, status.headers["Range"]) == (204, f"0-{len(first) - 1}")
        done = two.put(location, params={"digest": digest}, content=second)
        assert done.status_code == 201, done.text
        fetched = one.get(f"/v2/{repo}/blobs/{digest}")
        assert fetched.content == first + second

        cancelled = one.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        assert one.patch(cancelled, content=b"partial").status_code == 202
        assert two.delete(cancelled).status_code == 204
        gone = one.get(cancelled)
        assert gone.status_code == 404
        assert gone.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"


def test_blob_ranges_stream_from_s3(s3_server: LiveServer) -> None:
    data = bytes(range(256)) * 64
    with httpx.Client(base_url=s3_server.url, timeout=60) as client:
        digest = push_blob(client, "ranges/blob", data)
        url = f"/v2/ranges/blob/blobs/{digest}"
        whole = client.get(url)
        assert (whole.status_code, whole.content) == (200, data)
        assert whole.headers["Accept-Ranges"] == "bytes"
        part = client.get(url, headers={"Range": "bytes=100-355"})
        assert (part.status_code, part.content) == (206, data[100:356])
        assert part.headers["Content-Range"] == f"bytes 100-355/{len(data)}"
        tail = client.get(url, headers={"Range": "bytes=-10", "If-Range": whole.headers["ETag"]})
        assert (tail.status_code, tail.content) == (206, data[-10:])
        stale = client.get(url, headers={"Range": "bytes=0-0", "If-Range": '"stale"'})
        assert (stale.status_code, stale.content) == (200, data)
        bad = client.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert bad.status_code == 416
        assert bad.headers["Content-Range"] == f"bytes */{len(data)}"
        assert bad.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_redirect_blob_url_answers_with_a_presigned_url(
    s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    config = _s3_config(s3_endpoint, s3_endpoint.new_bucket(), redirectBlobURL=True)
    with (
        live_server(tmp_path, config, env=ENV) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        digest = push_blob(client, "redirected/blob", b"served by the bucket")
        url = f"/v2/redirected/blob/blobs/{digest}"
        answer = client.get(url)
        assert answer.status_code == 307
        assert answer.headers["Location"].startswith(s3_endpoint.url)
        assert httpx.get(answer.headers["Location"]).content == b"served by the bucket"
        head = client.head(url)  # HEAD is answered here, with the digest
        assert (head.status_code, head.headers["Docker-Content-Digest"]) == (200, digest)
        missing = client.get(url.replace(digest[-4:], "0000"))
        assert missing.status_code == 404  # no redirect to something that is not there


def test_a_sub_path_on_s3_beside_a_root_on_disk(s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    bucket = s3_endpoint.new_bucket()
    team = {
        "rootDirectory": str(tmp_path / "team-local"),
        "storageDriver": s3_endpoint.driver_config(bucket, rootdirectory="team"),
    }
    with (
        live_server(tmp_path / "srv", {"storage": {"subPaths": {"/team": team}}}) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        push_blob(client, "team/app", b"in the bucket")
        push_blob(client, "solo/app", b"on disk")
        catalog = client.get("/v2/_catalog").json()["repositories"]
        assert {"team/app", "solo/app"} <= set(catalog)
        assert (server.root / "solo" / "app" / "oci-layout").exists()
        assert not (server.root / "team").exists()
    driver = _driver(s3_endpoint, bucket, "team")
    assert driver.list("team/app/blobs") == ["team/app/blobs/sha256"]


def test_a_missing_bucket_stops_verify_and_serve_with_the_reason(
    s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    config = _s3_config(s3_endpoint, "no-such-bucket")
    config["storage"]["rootDirectory"] = str(tmp_path / "root")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    for command in ("verify", "serve"):
        done = subprocess.run(
            [sys.executable, "-m", "ocireg", command, str(path)],
            capture_output=True, text=True, timeout=120, env={**os.environ, **ENV},
        )  # fmt: skip
        assert done.returncode == 1, done.stdout + done.stderr
        expected = f"{path}: storage.storageDriver.bucket: no-such-bucket: no such bucket"
        assert expected in done.stderr.splitlines()


def _threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmRSS:")).split()[1])


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_a_pull_read_ahead_is_bounded_and_ends_with_the_client(s3_server: LiveServer) -> None:
    """A blob streamed from S3: exact bytes; a client that stops reading holds only what the
    read-ahead bound allows in the registry (not the blob); one that goes away closes the S3
    response and ends the reading thread."""
    data = os.urandom(64 << 20)
    pid = s3_server.process.pid
    with httpx.Client(base_url=s3_server.url, timeout=60) as client:
        digest = push_blob(client, "pull/bounded", data)
        url = f"/v2/pull/bounded/blobs/{digest}"
        whole = client.get(url)
        assert (whole.status_code, whole.content == data) == (200, True)
        del whole
        rss_before = _rss_kib(pid)
        with client.stream("GET", url) as slow:
            pieces = slow.iter_raw(1 << 20)  # kept: a dropped iterator closes the connection
            first = next(pieces)
            assert first == data[: len(first)]
            time.sleep(1.5)  # moto serves far faster: unbounded, the blob would be read ahead
            held_mib = (_rss_kib(pid) - rss_before) / 1024
            # bounded: relayed (plain TCP both ways), the relay's buffer (256 KiB) and the
            # sockets' buffers in the kernel; read ahead (TLS), ~5 pieces of 3 MiB (one being
            # read, two waiting, one waiting to be sent, the rest of the one before);
            # unbounded, ~50 MiB
            assert held_mib < 24, f"{held_mib:.1f} MiB held for a client that stopped reading"
            reading = _threads(pid)
        # the client went away mid-blob: the reading thread ends (idle worker threads only
        # ever leave, so the count drops below what it was while the pull was under way; a
        # worker that background work started meanwhile leaves once idle for anyio's 10 s)
        ends = time.monotonic() + 15
        while _threads(pid) >= reading:
            assert time.monotonic() < ends, "the reading thread outlived its client"
            time.sleep(0.05)
        assert client.get(url, headers={"Range": "bytes=0-9"}).content == data[:10]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def _s3_connections(pid: int, endpoint: S3Endpoint) -> int:
    """The server's established TCP connections to the S3 endpoint (moto closes its side
    after each pooled request, so only a body still being read is established)."""
    port = f"{urlsplit(endpoint.url).port:04X}"
    mine, count = _socket_inodes(pid), 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if remote.endswith(":" + port) and state == "01" and inode in mine:
                count += 1
    return count


def _until(condition: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    ends = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < ends, what
        time.sleep(0.05)


def test_a_large_pull_is_relayed_from_the_s3_socket_and_ends_with_its_client(
    s3_server: LiveServer, s3_endpoint: S3Endpoint
) -> None:
    """Over plain HTTP both ways a blob is copied from the S3 answer's socket to the client's
    by a thread of its own: exact bytes, whole and in ranges; while a client holds the
    answer, the server holds an S3 connection of the answer's own, and it goes (with the
    thread) when the client goes."""
    data = os.urandom(24 << 20)
    pid = s3_server.process.pid
    with httpx.Client(base_url=s3_server.url, timeout=60) as client:
        digest = push_blob(client, "pull/relayed", data)
        url = f"/v2/pull/relayed/blobs/{digest}"
        whole = client.get(url)
        assert (whole.status_code, whole.content == data) == (200, True)
        first, last = 1000, (20 << 20) + 77
        part = client.get(url, headers={"Range": f"bytes={first}-{last}"})
        assert part.status_code == 206
        assert part.headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
        assert part.content == data[first : last + 1]
        tail = client.get(url, headers={"Range": f"bytes=-{3 << 20}"})
        assert (tail.status_code, tail.content == data[-(3 << 20) :]) == (206, True)
        # the server closes the answer's S3 connection once it has sent the body: a client
        # that has read it all may look a moment before that
        _until(lambda: _s3_connections(pid, s3_endpoint) == 0, "the S3 connections closed")
        idle_threads = _threads(pid)
        with client.stream("GET", url) as held:
            pieces = held.iter_raw(1 << 20)
            assert next(pieces) == data[: 1 << 20]
            # the relay is in play: the answer's S3 connection, and its thread
            assert _s3_connections(pid, s3_endpoint) == 1
            assert _threads(pid) > idle_threads
    # the client went away mid-blob: the S3 connection and the thread are freed
    _until(lambda: _s3_connections(pid, s3_endpoint) == 0, "the S3 connection outlived its client")
    _until(lambda: _threads(pid) <= idle_threads, "the relay's thread outlived its client")


def test_the_next_request_on_a_kept_alive_connection_follows_a_relayed_answer(
    s3_server: LiveServer,
) -> None:
    data = os.urandom(6 << 20)
    with httpx.Client(base_url=s3_server.url, timeout=60) as client:
        digest = push_blob(client, "pull/kept", data)
    path = f"/v2/pull/kept/blobs/{digest}"
    sock = rawhttp.connect(int(s3_server.url.rsplit(":", 1)[1]))
    with sock:
        reader = rawhttp.Reader(sock)
        for extra in ("", f"Range: bytes=5-{(5 << 20) + 4}\r\n", ""):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())
            status, headers, body = reader.response()
            assert status == (206 if extra else 200)
            assert body == (data[5 : (5 << 20) + 5] if extra else data)
            assert headers.get("connection") != "close"
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.response()[0] == 200


def test_over_tls_a_large_pull_from_s3_is_read_ahead_as_before(
    s3_endpoint: S3Endpoint, tmp_path: Path
) -> None:
    """No relay into TLS (it writes the socket itself): the client gets the same bytes, read
    ahead through the usual path and encrypted by the connection."""
    ca = make_ca(tmp_path, "ca")
    cert = issue_server(ca, tmp_path)
    config = _s3_config(s3_endpoint, s3_endpoint.new_bucket())
    config["http"] = {"tls": {"cert": str(cert.cert_path), "key": str(cert.key_path)}}
    data = os.urandom(8 << 20)
    trust = ssl.create_default_context(cafile=ca.cert_path)
    with (
        live_server(tmp_path / "srv", config, env=ENV) as server,
        httpx.Client(base_url=server.url, verify=trust, timeout=60) as client,
    ):
        digest = push_blob(client, "pull/tls", data)
        url = f"/v2/pull/tls/blobs/{digest}"
        with client.stream("GET", url) as held:
            pieces = held.iter_raw(1 << 20)
            assert next(pieces) == data[: 1 << 20]
        assert client.get(url).content == data
        part = client.get(url, headers={"Range": f"bytes=7-{(2 << 20) + 6}"})
        assert (part.status_code, part.content == data[7 : (2 << 20) + 7]) == (206, True)


@pytest.fixture
def stalling_s3(
    s3_endpoint: S3Endpoint, tmp_path: Path
) -> Iterator[tuple[LiveServer, StallingProxy]]:
    """A server whose S3 is behind a proxy that can stall a relayed body, and which waits
    ``STALL_TIMEOUT`` seconds (not 30) for a relayed body's next byte."""
    with StallingProxy(s3_endpoint.url) as proxy:
        endpoint = S3Endpoint(proxy.url)
        config = _s3_config(endpoint, endpoint.new_bucket())
        env = {**ENV, BODY_TIMEOUT: str(STALL_TIMEOUT)}
        with live_server(tmp_path, config, env=env, module="tests.s3limits") as server:
            yield server, proxy


STALL_TIMEOUT = 4.0


def _pull_in_background(
    client: httpx.Client,
    url: str,
    stop_after: int | None = None,
    leave_once: threading.Event | None = None,
) -> tuple[threading.Thread, dict[str, Any]]:
    """GET ``url`` on a thread of its own, reading until the end (or ``stop_after`` bytes,
    then leaving, once ``leave_once`` is set if given); what happened goes in the dict:
    ``got``, ``error``, ``seconds``."""
    outcome: dict[str, Any] = {"got": 0}

    def pull() -> None:
        started = time.monotonic()
        try:
            with client.stream("GET", url) as answer:
                for piece in answer.iter_raw(64 << 10):
                    outcome["got"] += len(piece)
                    if stop_after is not None and outcome["got"] >= stop_after:
                        if leave_once is not None:
                            leave_once.wait(10)
                        outcome["left_at"] = time.monotonic()
                        return
        except httpx.HTTPError as error:
            outcome["error"] = error
        finally:
            outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    return thread, outcome


def _answers_quickly(server: LiveServer) -> None:
    started = time.monotonic()
    assert httpx.get(server.url + "/v2/", timeout=2).status_code == 200
    assert time.monotonic() - started < 1, "the server was held up by a stalled S3 answer"


def test_s3_stalling_mid_body_holds_up_only_that_pull(
    stalling_s3: tuple[LiveServer, StallingProxy],
) -> None:
    """S3 stops sending in the middle of a relayed body: the server answers other requests
    at once; a client that leaves frees the answer's S3 connection and thread at once (not at
    the read timeout); one that waits has its answer cut at the read timeout."""
    server, proxy = stalling_s3
    pid, endpoint = server.process.pid, S3Endpoint(proxy.url)
    data = os.urandom(8 << 20)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        digest = push_blob(client, "pull/stalled", data)
        url = f"/v2/pull/stalled/blobs/{digest}"
        idle_threads = _threads(pid)
        proxy.stall_after = 3 << 20
        # the client reads what came, then leaves while the relay waits for S3 (once S3 has
        # stalled: a client that left first could end the pull before S3 sent that much)
        thread, outcome = _pull_in_background(
            client, url, stop_after=(3 << 20) - (256 << 10), leave_once=proxy.stalled
        )
        assert proxy.stalled.wait(10)
        thread.join(10)
        assert "left_at" in outcome, outcome
        _answers_quickly(server)
        _until(lambda: _s3_connections(pid, endpoint) == 0, "the S3 socket outlived it", 2)
        _until(lambda: _threads(pid) <= idle_threads, "the relay outlived its client", 2)
        assert time.monotonic() - outcome["left_at"] < STALL_TIMEOUT - 1
        # the client waits: the stall ends the answer, short, at the read timeout
        proxy.stalled.clear()
        thread, outcome = _pull_in_background(client, url)
        assert proxy.stalled.wait(10)
        time.sleep(0.5)
        _answers_quickly(server)
        thread.join(STALL_TIMEOUT + 10)
        assert isinstance(outcome.get("error"), httpx.RemoteProtocolError), outcome
        assert (3 << 20) - (256 << 10) <= outcome["got"] < len(data)
        assert STALL_TIMEOUT <= outcome["seconds"] < STALL_TIMEOUT + 5
        _until(lambda: _s3_connections(pid, endpoint) == 0, "the S3 socket outlived it")
        _until(lambda: _threads(pid) <= idle_threads, "the relay outlived the stalled answer")
        proxy.stall_after = None
        assert client.get(url).content == data

    # the request log counts what each answer sent: some of the first two, all of the last
    # (logged a moment after the client has the last byte: the relay's thread writes it)
    def logged_pulls() -> list[int]:
        return [
            line["bytes_out"]
            for line in server.log_events()
            if line["msg"] == "request" and line["path"] == url and line["method"] == "GET"
        ]

    _until(lambda: len(logged_pulls()) == 3, "three pulls logged")
    logged = logged_pulls()
    assert len(logged) == 3 and 0 < logged[0] < len(data), logged
    assert outcome["got"] <= logged[1] < len(data) and logged[2] == len(data), logged


def test_a_blob_gone_from_s3_since_it_was_found_is_blob_unknown(
    stalling_s3: tuple[LiveServer, StallingProxy],
) -> None:
    """Found (its HEAD answers), then gone when its content is asked for: 404 BLOB_UNKNOWN,
    whether the pull would be relayed or read ahead, never a 500."""
    server, proxy = stalling_s3
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for size in (5 << 20, 1000):
            digest = push_blob(client, "pull/vanished", os.urandom(size))
            proxy.vanished = True
            try:
                answer = client.get(f"/v2/pull/vanished/blobs/{digest}")
            finally:
                proxy.vanished = False
            assert answer.status_code == 404, answer.text
            assert answer.json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_s3_stalling_before_its_answer_holds_up_only_that_pull(
    stalling_s3: tuple[LiveServer, StallingProxy],
) -> None:
    """The relayed GetObject's connection is made and its answer's head read off the event
    loop: while S3 sends nothing, the server answers others; at the read timeout the pull
    is asked for again the usual way, and its client gets every byte."""
    server, proxy = stalling_s3
    data = os.urandom(3 << 20)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        digest = push_blob(client, "pull/slowhead", data)
        proxy.stall_after = 0
        thread, outcome = _pull_in_background(client, f"/v2/pull/slowhead/blobs/{digest}")
        assert proxy.stalled.wait(10)
        time.sleep(0.5)
        _answers_quickly(server)
        thread.join(STALL_TIMEOUT + 10)
    assert ("error" not in outcome, outcome["got"]) == (True, len(data))
    assert STALL_TIMEOUT <= outcome["seconds"] < STALL_TIMEOUT + 5


@pytest.fixture
def silent_s3(
    s3_endpoint: S3Endpoint, tmp_path: Path
) -> Iterator[tuple[LiveServer, StallingProxy]]:
    """A server whose S3 is behind a proxy that can swallow every request (``silent``), and
    which waits ``SILENT_TIMEOUT`` seconds (not 30) for an answer's next byte."""
    with StallingProxy(s3_endpoint.url) as proxy:
        endpoint = S3Endpoint(proxy.url)
        config = _s3_config(endpoint, endpoint.new_bucket())
        env = {**ENV, QUICK_TIMEOUT: str(SILENT_TIMEOUT)}
        with live_server(tmp_path, config, env=env, module="tests.s3limits") as server:
            try:
                yield server, proxy
            finally:
                proxy.silent.clear()


SILENT_TIMEOUT = 1.0


def test_a_silent_s3_fails_a_request_within_its_read_timeouts_and_then_recovers(
    silent_s3: tuple[LiveServer, StallingProxy],
) -> None:
    """S3 stops answering (say, pooled connections a middlebox dropped): a blob HEAD waits for
    the quick read timeout on each try (ocireg's own, then botocore's three), not 300 s on
    each, and fails with a 5xx; meanwhile the server answers others; once S3 answers again,
    so does the registry, on fresh connections."""
    server, proxy = silent_s3
    with httpx.Client(base_url=server.url, timeout=60) as client:
        digest = push_blob(client, "quiet/a", os.urandom(1 << 10))
        url = f"/v2/quiet/a/blobs/{digest}"
        proxy.silent.set()
        started = time.monotonic()
        thread, outcome = _request_in_background(client, "HEAD", url)
        time.sleep(SILENT_TIMEOUT / 2)
        _answers_quickly(server)
        # a few S3 requests, each tried four times with botocore's back-off between; with
        # 300 s to wait for each answer, the HEAD would still be waiting
        thread.join(60)
        assert not thread.is_alive(), "the HEAD waited past its read timeouts"
        assert time.monotonic() - started < 60
        assert outcome["status"] == 503 and proxy.swallowed >= 2
        logged = server.log.read_text()  # one line, not an unexpected error's traceback
        assert "storage unreachable" in logged and "unexpected error" not in logged
        proxy.silent.clear()
        assert client.head(url).status_code == 200


def test_blob_lookups_stalled_on_s3_leave_other_threaded_work_its_threads(
    silent_s3: tuple[LiveServer, StallingProxy],
) -> None:
    """More blob lookups than the worker threads other work shares (anyio's 40) waiting on a
    silent S3 take none of those: the catalog, read in one of them, answers at once."""
    server, proxy = silent_s3
    with httpx.Client(base_url=server.url, timeout=60) as client:
        digest = push_blob(client, "quiet/b", os.urandom(1 << 10))
        url = f"/v2/quiet/b/blobs/{digest}"
        proxy.silent.set()
        lookups = [_request_in_background(client, "HEAD", url) for _ in range(48)]
        for _ in range(100):  # until most are waiting on S3
            if proxy.swallowed >= 40:
                break
            time.sleep(0.05)
        assert proxy.swallowed >= 40
        started = time.monotonic()
        assert httpx.get(server.url + "/v2/_catalog", timeout=10).status_code == 200
        # (with the lookups on anyio's 40 threads, it waits for the first of them to time out)
        assert time.monotonic() - started < 2 * SILENT_TIMEOUT
        proxy.silent.clear()
        for thread, _ in lookups:
            thread.join(60)


def test_manifest_requests_waiting_on_a_silent_s3_leave_the_event_loop_free(
    silent_s3: tuple[LiveServer, StallingProxy],
) -> None:
    """Manifest, tag, referrer and discovery requests ask S3 from a worker thread: while S3 answers
    none of them, the server answers others at once (a request waiting on S3 from the event
    loop held every other for its read timeouts); each of them fails with a 503 (its
    storage unreachable), and once S3 answers again they succeed."""
    server, proxy = silent_s3
    with httpx.Client(base_url=server.url, timeout=60) as client:
        document = image_manifest(client, "quiet/m")
        digest = put_manifest(client, "quiet/m", "v1", document).headers["Docker-Content-Digest"]
        put_manifest(client, "quiet/m", "gone", document)
        body = canonical(document)
        manifest = {"Content-Type": document["mediaType"]}
        asked: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", "/v2/quiet/m/manifests/v1", {}),
            ("HEAD", "/v2/quiet/m/manifests/v1", {}),
            ("PUT", "/v2/quiet/m/manifests/v2", {"content": body, "headers": manifest}),
            ("DELETE", "/v2/quiet/m/manifests/gone", {}),
            ("GET", "/v2/quiet/m/tags/list", {}),
            ("GET", f"/v2/quiet/m/referrers/{digest}", {}),
            ("GET", "/v2/quiet/m/_oci/ext/discover", {}),
        ]
        outcomes = _asked_while_s3_is_silent(server, proxy, client, asked)
        assert [outcome.get("status") for outcome in outcomes] == [503] * len(asked)
        for method, url, kw in asked:
            assert client.request(method, url, **kw).status_code < 300, (method, url)


def test_blob_writes_waiting_on_a_silent_s3_leave_the_event_loop_free(
    silent_s3: tuple[LiveServer, StallingProxy],
) -> None:
    """Uploads (begun, monolithic, chunked, finished), mounts and blob deletes ask S3 from
    worker threads too: while S3 answers none of them, the server answers others at once,
    and each of them fails with a 5xx."""
    server, proxy = silent_s3
    data = os.urandom(64 << 10)
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    octets = {"Content-Type": "application/octet-stream"}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        push_blob(client, "quiet/from", data)
        push_blob(client, "quiet/gone", data)
        begun = client.post("/v2/quiet/up/blobs/uploads/")
        assert begun.status_code == 202, begun.text
        session = begun.headers["Location"]
        chunked = client.post("/v2/quiet/up/blobs/uploads/").headers["Location"]
        assert client.patch(chunked, content=data, headers=octets).status_code == 202
        asked: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/v2/quiet/new/blobs/uploads/", {}),
            ("POST", "/v2/quiet/mono/blobs/uploads/", {
                "params": {"digest": digest}, "content": data, "headers": octets}),
            ("PATCH", session, {"content": data, "headers": octets}),
            ("PUT", chunked, {"params": {"digest": digest}}),
            ("POST", "/v2/quiet/to/blobs/uploads/", {
                "params": {"mount": digest, "from": "quiet/from"}}),
            ("DELETE", f"/v2/quiet/gone/blobs/{digest}", {}),
        ]  # fmt: skip
        outcomes = _asked_while_s3_is_silent(server, proxy, client, asked)
        statuses = [outcome.get("status", outcome.get("error")) for outcome in outcomes]
        assert all(isinstance(status, int) and status >= 500 for status in statuses), statuses


def _asked_while_s3_is_silent(
    server: LiveServer,
    proxy: StallingProxy,
    client: httpx.Client,
    asked: list[tuple[str, str, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Make each (method, url, keywords) request while S3 answers nothing, checking that the
    server answers others meanwhile; each request's outcome, once S3 answers again."""
    proxy.silent.set()
    try:
        waiting = [_request_in_background(client, method, url, **kw) for method, url, kw in asked]
        for _ in range(3):
            time.sleep(SILENT_TIMEOUT / 2)
            _answers_quickly(server)
        for thread, _ in waiting:
            thread.join(60)
            assert not thread.is_alive(), "a request waited past its read timeouts"
    finally:
        proxy.silent.clear()
    return [outcome for _, outcome in waiting]


def _request_in_background(
    client: httpx.Client, method: str, url: str, **kw: Any
) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def ask() -> None:
        try:
            outcome["status"] = client.request(method, url, **kw).status_code
        except httpx.HTTPError as error:
            outcome["error"] = error

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    return thread, outcome


def test_a_repository_without_the_blob_learns_nothing_from_a_known_content(
    s3_server: LiveServer, s3_endpoint: S3Endpoint
) -> None:
    """Dedupe on S3: the content of a blob another repository holds, whose size the server
    knows (no HEAD of the content), is no answer for a repository without the blob: that one
    gets BLOB_UNKNOWN, for a range too (never the other repository's bytes or its 416)."""
    data = os.urandom(3 << 20)
    pid = s3_server.process.pid
    with httpx.Client(base_url=s3_server.url, timeout=60) as client:
        digest = push_blob(client, "known/holder", data)  # its size is learnt at the commit
        assert client.get(f"/v2/known/holder/blobs/{digest}").content == data
        push_blob(client, "known/other", b"another blob")  # the repository exists
        url = f"/v2/known/other/blobs/{digest}"
        for extra in ({}, {"Range": "bytes=0-99"}, {"Range": f"bytes={len(data) + 5}-"}):
            answer = client.get(url, headers=extra)
            assert answer.status_code == 404, (extra, answer.status_code)
            assert answer.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        ranged = client.get(f"/v2/known/holder/blobs/{digest}", headers={"Range": "bytes=7-"})
        assert (ranged.status_code, ranged.content == data[7:]) == (206, True)
    _until(lambda: _s3_connections(pid, s3_endpoint) == 0, "a GetObject stayed open")
