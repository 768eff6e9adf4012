from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx

from tests.liveserver import LiveServer, live_server
from tests.oci import error_codes, push_blob, sha256

OCTET = {"Content-Type": "application/octet-stream"}


def _start(client: httpx.Client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202
    assert response.headers["Range"] == "0-0"
    location = response.headers["Location"]
    assert location.startswith(f"/v2/{repo}/blobs/uploads/")
    return location


def test_post_then_put(client: httpx.Client, repo: str) -> None:
    data = os.urandom(5000)
    location = _start(client, repo)
    response = client.put(location, params={"digest": sha256(data)}, content=data, headers=OCTET)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/{repo}/blobs/{sha256(data)}"
    assert response.headers["Docker-Content-Digest"] == sha256(data)
    assert client.get(response.headers["Location"]).content == data


def test_chunked_upload_with_status_and_out_of_order(client: httpx.Client, repo: str) -> None:
    data = os.urandom(3000)
    location = _start(client, repo)
    first = client.patch(location, content=data[:1000], headers={**OCTET, "Content-Range": "0-999"})
    assert first.status_code == 202
    assert first.headers["Range"] == "0-999"
    # Re-sending the first chunk to the stale location is out of order.
    stale = client.patch(location, content=data[:1000], headers={**OCTET, "Content-Range": "0-999"})
    assert stale.status_code == 416
    assert stale.headers["Range"] == "0-999"
    status = client.get(first.headers["Location"])
    assert status.status_code == 204
    assert status.headers["Range"] == "0-999"
    assert status.headers["Location"] == location
    skip = client.patch(
        location, content=data[2000:], headers={**OCTET, "Content-Range": "2000-2999"}
    )
    assert skip.status_code == 416
    second = client.patch(
        location, content=data[1000:2000], headers={**OCTET, "Content-Range": "1000-1999"}
    )
    assert second.status_code == 202
    done = client.put(
        location,
        params={"digest": sha256(data)},
        content=data[2000:],
        headers={**OCTET, "Content-Range": "2000-2999"},
    )
    assert done.status_code == 201, done.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_streamed_patch_without_content_range(client: httpx.Client, repo: str) -> None:
    data = os.urandom(300_000)
    location = _start(client, repo)

    def body():  # type: ignore[no-untyped-def]
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    response = client.patch(location, content=body(), headers=OCTET)
    assert response.status_code == 202
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    done = client.put(location, params={"digest": sha256(data)})
    assert done.status_code == 201


def test_digest_mismatch_is_rejected_and_nothing_is_stored(
    client: httpx.Client, repo: str, server: LiveServer
) -> None:
    location = _start(client, repo)
    wrong = sha256(b"something else")
    response = client.put(location, params={"digest": wrong}, content=b"actual", headers=OCTET)
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{sha256(b'actual')}").status_code == 404
    assert not list((server.root / repo / ".uploads").iterdir())


def test_monolithic_post_digest_mismatch(client: httpx.Client, repo: str) -> None:
    response = client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": sha256(b"x")},
        content=b"y",
        headers=OCTET,
    )
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]


def test_monolithic_post_with_a_bad_digest_leaves_no_session(
    client: httpx.Client, repo: str, server: LiveServer
) -> None:
    for bad in ("sha256:abc", "md5:" + "0" * 32):  # malformed; well formed but unsupported
        response = client.post(
            f"/v2/{repo}/blobs/uploads/", params={"digest": bad}, content=b"y", headers=OCTET
        )
        assert (response.status_code, error_codes(response)) == (400, ["DIGEST_INVALID"])
    uploads = server.root / repo / ".uploads"
    assert not uploads.exists() or not list(uploads.iterdir())


def test_content_length_mismatch_writes_nothing(client: httpx.Client, repo: str) -> None:
    location = _start(client, repo)
    request = client.build_request(
        "PATCH", location, content=b"abc", headers={**OCTET, "Content-Range": "0-9"}
    )
    response = client.send(request)
    assert response.status_code in (400, 416)
    assert client.get(location).headers["Range"] == "0-0"


def test_cancel_upload(client: httpx.Client, repo: str) -> None:
    location = _start(client, repo)
    assert client.delete(location).status_code == 204
    response = client.get(location)
    assert response.status_code == 404
    assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]
    assert client.delete(location).status_code == 404


def test_unknown_sessions(client: httpx.Client, repo: str) -> None:
    for session in ("0" * 32, "not-a-session"):
        response = client.patch(f"/v2/{repo}/blobs/uploads/{session}", content=b"x", headers=OCTET)
        assert response.status_code == 404
        assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]
        put = client.put(f"/v2/{repo}/blobs/uploads/{session}", params={"digest": sha256(b"")})
        assert put.status_code == 404


def test_put_without_digest_is_rejected(client: httpx.Client, repo: str) -> None:
    location = _start(client, repo)
    response = client.put(location, content=b"x", headers=OCTET)
    assert response.status_code == 400


def test_mount_from_another_repository(client: httpx.Client, repo: str) -> None:
    source = repo + "-src"
    digest = push_blob(client, source, b"mountable")
    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == b"mountable"


def test_automatic_mount_without_from(client: httpx.Client, repo: str) -> None:
    digest = push_blob(client, repo + "-elsewhere", b"auto-mount me")
    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest})
    assert response.status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == b"auto-mount me"


def test_mount_of_missing_blob_falls_back_to_upload(client: httpx.Client, repo: str) -> None:
    missing = sha256(b"nobody has this")
    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": missing, "from": "x/y"})
    assert response.status_code == 202
    assert "/blobs/uploads/" in response.headers["Location"]


def test_upload_is_stored_as_oci_layout(
    client: httpx.Client, repo: str, server: LiveServer
) -> None:
    digest = push_blob(client, repo, b"layout check")
    root: Path = server.root / repo
    assert (root / "oci-layout").read_text() == '{"imageLayoutVersion":"1.0.0"}'
    blob = root / "blobs" / "sha256" / digest.split(":")[1]
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == digest.split(":")[1]


def test_large_streamed_chunks_hash_in_batches(client: httpx.Client, repo: str) -> None:
    """Bodies over the 1 MiB batch go through the writer thread; each chunk's bytes and the
    running digest must come out exactly as sent, across several PATCHes."""
    data = os.urandom((5 << 20) + 12345)
    location = _start(client, repo)
    cut = (3 << 20) + 7
    for start, end in ((0, cut), (cut, len(data))):
        headers = {**OCTET, "Content-Range": f"{start}-{end - 1}"}
        response = client.patch(location, content=iter([data[start:end]]), headers=headers)
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{end - 1}"
        location = response.headers["Location"]
    response = client.put(location, params={"digest": sha256(data)})
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_large_body_with_wrong_digest_writes_nothing(client: httpx.Client, repo: str) -> None:
    data = os.urandom(3 << 20)
    location = _start(client, repo)
    wrong = sha256(b"not this")
    response = client.put(location, params={"digest": wrong}, content=data, headers=OCTET)
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404


def test_refused_monolithic_push_leaves_no_session_and_no_repository(
    client: httpx.Client, repo: str, server: LiveServer
) -> None:
    refusals = (
        ({"Content-Range": "5-9"}, 416),  # does not start at offset 0
        ({}, 400),  # the digest is not the body's
    )
    for headers, status in refusals:
        response = client.post(
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": sha256(b"x")},
            content=b"y",
            headers={**OCTET, **headers},
        )
        assert response.status_code == status
    uploads = server.root / repo / ".uploads"
    assert not uploads.exists() or not list(uploads.iterdir())
    assert repo not in client.get("/v2/_catalog", params={"n": 10000}).json()["repositories"]
    assert error_codes(client.get(f"/v2/{repo}/tags/list")) == ["NAME_UNKNOWN"]


def test_empty_post_with_any_content_type_starts_an_upload(client: httpx.Client, repo: str) -> None:
    # what `curl -X POST -d ''` and urllib send; docker-registry and zot answer 202 too
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "nonsense"):
        response = client.post(
            f"/v2/{repo}/blobs/uploads/", content=b"", headers={"Content-Type": content_type}
        )
        assert response.status_code == 202, content_type
    # every other body-less request follows the same rule: closing an upload, an empty chunk
    location = _start(client, repo)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert client.patch(location, content=b"", headers=form).status_code == 202
    response = client.put(location, params={"digest": sha256(b"")}, content=b"", headers=form)
    assert response.status_code == 201


def test_a_body_of_another_media_type_is_still_415(client: httpx.Client, repo: str) -> None:
    response = client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": sha256(b"y")},
        content=b"y",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 415


def test_automatic_mount_can_be_turned_off(tmp_path: Path) -> None:
    with (
        live_server(tmp_path, {"storage": {"automaticMount": False}}) as live,
        httpx.Client(base_url=live.url) as client,
    ):
        digest = push_blob(client, "holder", b"mount me")
        push_blob(client, "target", b"mount me")  # even a blob the target has: 202
        for target in ("target", "other"):
            response = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest})
            assert response.status_code == 202
            assert response.headers["Location"].startswith(f"/v2/{target}/blobs/uploads/")
        response = client.post(
            "/v2/other/blobs/uploads/", params={"mount": digest, "from": "holder"}
        )
        assert response.status_code == 201  # naming the source still mounts
