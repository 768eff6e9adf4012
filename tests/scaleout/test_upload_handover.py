"""Upload sessions live in the bucket, not in an instance: one begun on one instance (POST and
PATCH) is continued and finished on others (PATCH, PUT), one is cancelled on another (DELETE),
and what every instance serves is the blob, byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.oci import error_codes
from tests.scaleout.instances import Shared, clients, instances

pytestmark = pytest.mark.e2e
REPO = "handover/blob"
MiB = 1 << 20


def test_an_upload_moves_between_instances_and_one_is_cancelled_on_another(
    tmp_path: Path, shared: Shared
) -> None:
    # the first chunk is past one multipart part (5 MiB): the next instance continues a
    # multipart upload it did not begin
    chunks = [bytes([k]) * size for k, size in enumerate((6 * MiB, 100_000, 1000), start=1)]
    blob = b"".join(chunks)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    with instances(tmp_path, shared.config()) as servers:
        one, two, three = pool = clients(servers, timeout=120)
        try:
            begun = one.post(f"/v2/{REPO}/blobs/uploads/")
            assert begun.status_code == 202, begun.text
            location = begun.headers["Location"]
            offset = 0
            for client, chunk in zip((one, two), chunks[:2], strict=True):
                end = offset + len(chunk) - 1
                patched = client.patch(
                    location,
                    content=chunk,
                    headers={
                        "Content-Range": f"{offset}-{end}",
                        "Content-Type": "application/octet-stream",
                    },
                )
                assert patched.status_code == 202, patched.text
                assert patched.headers["Range"] == f"0-{end}"
                location, offset = patched.headers["Location"], end + 1
            status = three.get(location)
            assert (status.status_code, status.headers["Range"]) == (204, f"0-{offset - 1}")
            # a chunk that does not follow on is refused by any instance, and changes nothing
            stale = one.patch(location, content=b"x", headers={"Content-Range": "0-0"})
            assert stale.status_code == 416
            done = three.put(location, params={"digest": digest}, content=chunks[2])
            assert done.status_code == 201, done.text
            for client in pool:
                fetched = client.get(f"/v2/{REPO}/blobs/{digest}")
                assert fetched.status_code == 200
                assert hashlib.sha256(fetched.content).hexdigest() == digest.split(":")[1]
                assert int(fetched.headers["Content-Length"]) == len(blob)
                assert client.get(location).status_code == 404  # the session is over

            cancelled = two.post(f"/v2/{REPO}/blobs/uploads/").headers["Location"]
            assert two.patch(cancelled, content=b"partial").status_code == 202
            assert one.delete(cancelled).status_code == 204
            for client in pool:
                gone = client.get(cancelled)
                assert gone.status_code == 404
                assert error_codes(gone) == ["BLOB_UPLOAD_UNKNOWN"]
                late = client.put(cancelled, params={"digest": digest}, content=b"")
                assert late.status_code == 404
            partial = "sha256:" + hashlib.sha256(b"partial").hexdigest()
            assert three.head(f"/v2/{REPO}/blobs/{partial}").status_code == 404
        finally:
            for client in pool:
                client.close()
