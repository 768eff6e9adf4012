"""Each rule of the client report, driven by requests that break it (and by ones that do not)
through the ASGI app, read back from the report endpoint."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocireg.storage.memory import MemoryDriver
from tests.auth.registries import full_access, write_htpasswd
from tests.ext.clientreportapp import REPORT, departures, registry
from tests.oci import OCI_MANIFEST, canonical, image_manifest, push_blob, put_manifest, sha256

if TYPE_CHECKING:
    from starlette.testclient import TestClient

UA = {"User-Agent": "rude-client/1.0"}
OCTETS = {"Content-Type": "application/octet-stream"}


def _report(client: TestClient, **kwargs: Any) -> dict[str, Any]:
    answer = client.get(REPORT, **kwargs)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _rude(client: TestClient) -> dict[str, dict[str, Any]]:
    return departures(_report(client), UA["User-Agent"])


def _start(client: TestClient, repo: str) -> str:
    started = client.post(f"/v2/{repo}/blobs/uploads/", headers={**UA, "Content-Length": "0"})
    assert started.status_code == 202
    location: str = started.headers["Location"]
    return location


def test_a_well_behaved_client_has_no_departures() -> None:
    with registry() as client:
        client.headers.update({"User-Agent": "polite/1.0"})
        document = image_manifest(client, "polite/app")
        put_manifest(client, "polite/app", "v1", document)
        got = client.get("/v2/polite/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200
        report = _report(client)
    assert departures(report, "polite/1.0") == {}
    (polite,) = [c for c in report["clients"] if c["userAgent"] == "polite/1.0"]
    assert polite["requests"] == 4  # two blobs, the manifest PUT, the GET; not the report


def test_manifest_put_without_content_type() -> None:
    with registry() as client:
        document = image_manifest(client, "rude/put")
        body = canonical(document)
        answer = client.put("/v2/rude/put/manifests/v1", content=body, headers=UA)
        found = _rude(client)
    rule = found["manifest-put-content-type"]
    assert (rule["level"], rule["count"]) == ("SHOULD", 1)
    assert rule["example"] == {
        "method": "PUT",
        "path": "/v2/rude/put/manifests/v1",
        "headers": {"accept": "*/*", "content-length": str(len(body))},  # no Content-Type
        "status": answer.status_code,
    }
    assert rule["section"].endswith("spec.md#pushing-manifests")


def test_manifest_put_with_parameters_in_content_type() -> None:
    with registry() as client:
        document = image_manifest(client, "rude/params")
        headers = {**UA, "Content-Type": f"{OCI_MANIFEST}; charset=utf-8"}
        client.put("/v2/rude/params/manifests/v1", content=canonical(document), headers=headers)
        assert _rude(client)["manifest-put-content-type"]["count"] == 1


def test_chunk_without_octet_stream_and_with_a_range_that_disagrees() -> None:
    with registry() as client:
        location = _start(client, "rude/patch")
        headers = {**UA, "Content-Type": "text/plain", "Content-Range": "0-9"}
        answer = client.patch(location, content=b"12345", headers=headers)
        found = _rude(client)
    assert found["blob-patch-content-type"]["level"] == "MUST"
    mismatch = found["content-range-length-mismatch"]
    assert mismatch["example"]["headers"] == {
        "accept": "*/*",
        "content-type": "text/plain",
        "content-range": "0-9",
        "content-length": "5",
    }
    assert mismatch["example"]["status"] == answer.status_code


def test_a_chunk_that_does_not_go_to_the_returned_location() -> None:
    with registry() as client:
        first = _start(client, "rude/loc")
        second = _start(client, "rude/other")
        session = first.rsplit("/", 1)[-1]
        elsewhere = f"/v2/rude/other/blobs/uploads/{session}"  # right session, wrong repository
        headers = {**UA, **OCTETS, "Content-Range": "0-2"}
        client.patch(elsewhere, content=b"abc", headers=headers)
        client.patch(second, content=b"abc", headers=headers)  # as told: no departure
        found = _rude(client)
    assert found["upload-location-ignored"]["count"] == 1
    assert found["upload-location-ignored"]["example"]["path"] == elsewhere


def test_manifest_get_without_accept() -> None:
    with registry() as client:
        client.headers.update(UA)
        document = image_manifest(client, "rude/get")
        put_manifest(client, "rude/get", "v1", document)
        client.get("/v2/rude/get/manifests/v1", headers={"Accept": "application/json"})
        client.get("/v2/rude/get/manifests/v1", headers={"Accept": f"{OCI_MANIFEST}"})
        found = _rude(client)
    assert found["manifest-get-accept"]["count"] == 1
    assert found["manifest-get-accept"]["example"]["headers"] == {"accept": "application/json"}


def test_head_after_push_and_repush() -> None:
    with registry() as client:
        client.headers.update(UA)
        document = image_manifest(client, "rude/layers")
        layer = document["layers"][0]["digest"]
        assert client.head(f"/v2/rude/layers/blobs/{layer}").status_code == 200
        put_manifest(client, "rude/layers", "v1", document)
        # a later push checking what is there already is what HEAD is for
        assert client.head(f"/v2/rude/layers/blobs/{layer}").status_code == 200
        push_blob(client, "rude/layers", b"layer-rude/layers")  # told twice that it is there
        push_blob(client, "rude/elsewhere", b"layer-rude/layers")  # a mount would have done
        found = _rude(client)
    assert found["head-after-push"]["count"] == 1
    assert found["blob-repush"]["count"] == 2
    assert found["blob-repush"]["level"] == "info"


def test_a_digest_with_an_unregistered_algorithm() -> None:
    with registry() as client:
        digest = "md5:" + hashlib.md5(b"x").hexdigest()
        answer = client.head(f"/v2/rude/md5/blobs/{digest}", headers=UA)
        assert answer.status_code in (400, 404)
        client.head(f"/v2/rude/md5/blobs/{sha256(b'x')}", headers=UA)
        found = _rude(client)
    assert found["digest-algorithm"]["count"] == 1


def test_authorization_before_a_challenge_is_information_and_shows_no_credentials(
    tmp_path: Path,
) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"ci": "ci-pw"})
    http = {"auth": {"htpasswd": {"path": str(htpasswd)}}, "accessControl": full_access("ci")}
    http["accessControl"]["adminPolicy"] = {"users": ["ci"], "actions": []}
    with registry(http=http) as client:
        eager = client.get("/v2/", headers={**UA}, auth=("ci", "ci-pw"))
        assert eager.status_code == 200
        client.headers.update({"User-Agent": "patient/1.0"})
        assert client.get("/v2/").status_code == 401
        assert client.get("/v2/", auth=("ci", "ci-pw")).status_code == 200
        report = _report(client, auth=("ci", "ci-pw"))
    rule = departures(report, "rude-client/1.0")["authorization-before-challenge"]
    assert rule["level"] == "info"
    assert rule["example"]["headers"] == {"accept": "*/*", "authorization": "Basic (redacted)"}
    assert "ci-pw" not in str(report) and "Y2k6Y2ktcHc" not in str(report)
    assert departures(report, "patient/1.0") == {}


def test_a_retry_before_retry_after() -> None:
    with registry(http={"ratelimit": {"methods": [{"method": "HEAD", "rate": 0.01}]}}) as client:
        blob = f"/v2/rude/retry/blobs/{sha256(b'x')}"
        statuses = [client.head(blob, headers=UA).status_code for _ in range(3)]
        assert statuses == [404, 429, 429]
        found = _rude(client)
    assert found["retry-after-ignored"]["count"] == 1  # the third, sent at once after a 429


class Redirecting(MemoryDriver):
    """Memory storage that, like an s3 root with ``redirectBlobURL``, answers blob GETs with a
    307 to ``where`` + the blob's path (``where`` empty: a path on the registry itself)."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def redirect_url(self, path: str, method: str) -> str | None:
        return f"{self.where}/direct/{path}"


def _blob(client: TestClient, repo: str) -> str:
    digest = push_blob(client, repo, b"redirected content")
    return f"/v2/{repo}/blobs/{digest}"


def test_a_redirect_elsewhere_asked_again_instead_of_followed() -> None:
    with registry(driver=Redirecting("https://bucket.example")) as client:
        url = _blob(client, "rude/redirect")
        first = client.get(url, headers=UA, follow_redirects=False)
        assert first.status_code == 307
        assert first.headers["Location"].startswith("https://bucket.example/direct/")
        again = client.get(url, headers=UA, follow_redirects=False)  # asked again at once
        assert again.status_code == 307  # answered as without the report
        client.get(url, headers={"User-Agent": "follows/1.0"}, follow_redirects=False)
        report = _report(client)
    rule = departures(report, "rude-client/1.0")["redirect-not-followed"]
    assert (rule["level"], rule["count"]) == ("SHOULD", 1)
    assert rule["example"]["path"] == url
    assert rule["section"].endswith("spec.md#pulling-blobs")
    assert departures(report, "follows/1.0") == {}  # one GET: where it went is not seen


def test_a_redirect_on_the_registry_followed_or_not() -> None:
    """A Location on the registry itself: the report sees whether it was fetched."""
    with registry(driver=Redirecting("")) as client:
        url = _blob(client, "rude/here")
        polite = {"User-Agent": "follows/1.0"}
        for _ in range(2):  # follows each time, so asking again is a new pull
            followed = client.get(url, headers=polite, follow_redirects=True)
            assert followed.status_code == 404  # nothing serves it here; the report saw it asked
            assert followed.history[0].status_code == 307
        for _ in range(3):
            assert client.get(url, headers=UA, follow_redirects=False).status_code == 307
        report = _report(client)
    assert departures(report, "follows/1.0") == {}
    assert departures(report, "rude-client/1.0")["redirect-not-followed"]["count"] == 2
