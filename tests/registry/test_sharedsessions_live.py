"""Upload sessions on two instances that share one bucket and one PostgreSQL meta DB: a session
begun on one is seen, continued and finished on the other, and the per-client and
per-repository caps count every session, whichever instance opened it."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.auth.registries import EVERY_ACTION, write_htpasswd
from tests.oci import error_codes, sha256
from tests.postgres import Postgres, postgres
from tests.s3server import S3Endpoint, s3_endpoint
from tests.sharedinstances import two_instances

__all__ = ["postgres", "s3_endpoint"]  # session fixtures, used here by name

OCTET = {"Content-Type": "application/octet-stream"}
REPO = "shared/uploads"
STARTS = f"/v2/{REPO}/blobs/uploads/"


def _refused_by(response: httpx.Response, cap: str) -> None:
    assert response.status_code == 429, response.text
    assert error_codes(response) == ["TOOMANYREQUESTS"]
    assert response.json()["errors"][0]["detail"]["cap"] == cap


def test_sessions_and_their_caps_are_shared_by_instances(
    tmp_path: Path, s3_endpoint: S3Endpoint, postgres: Postgres
) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"ann": "ann-pw", "bob": "bob-pw"})
    http = {
        "auth": {"htpasswd": {"path": str(htpasswd)}},
        "accessControl": {
            "repositories": {
                "**": {"policies": [{"users": ["ann", "bob"], "actions": EVERY_ACTION}]}
            }
        },
        "maxUploadSessionsPerClient": 2,
        "maxUploadSessionsPerRepository": 3,
    }
    with two_instances(tmp_path, s3_endpoint, postgres, {"http": http}) as (one, two):
        ann = [httpx.Client(base_url=s.url, auth=("ann", "ann-pw")) for s in (one, two)]
        bob = [httpx.Client(base_url=s.url, auth=("bob", "bob-pw")) for s in (one, two)]
        try:
            first, second = ann[0].post(STARTS), ann[1].post(STARTS)
            assert (first.status_code, second.status_code) == (202, 202)
            # ann has two open, one on each instance: her third is refused on either
            _refused_by(ann[1].post(STARTS), "http.maxUploadSessionsPerClient")
            _refused_by(ann[0].post(STARTS), "http.maxUploadSessionsPerClient")
            # the repository holds three at most, whoever opened them and where
            assert bob[1].post(STARTS).status_code == 202
            _refused_by(bob[0].post(STARTS), "http.maxUploadSessionsPerRepository")
            # ann's session begun on the first instance: continued and finished on the second
            location = first.headers["Location"]
            data = b"begun on one, finished on two"
            assert ann[1].get(location).status_code == 204
            patched = ann[1].patch(location, content=data[:10], headers=OCTET)
            assert (patched.status_code, patched.headers["Range"]) == (202, "0-9")
            done = ann[1].put(location, params={"digest": sha256(data)}, content=data[10:],
                              headers=OCTET)  # fmt: skip
            assert done.status_code == 201, done.text
            assert ann[0].get(f"/v2/{REPO}/blobs/{sha256(data)}").content == data
            # the session that ended on the second instance no longer counts on the first
            third = ann[0].post(STARTS)
            assert third.status_code == 202, third.text
            # nor does one cancelled on the instance that did not open it
            assert ann[0].delete(second.headers["Location"]).status_code == 204
            assert ann[1].post(STARTS).status_code == 202
        finally:
            for client in ann + bob:
                client.close()
