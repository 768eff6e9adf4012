"""The client report as a whole: who may read it, how large it may grow, and that it never
changes an answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.auth.registries import full_access, write_htpasswd
from tests.ext.clientreportapp import REPORT, departures, registry
from tests.oci import OCI_MANIFEST, canonical, image_manifest, sha256


def _auth(tmp_path: Path) -> dict[str, Any]:
    users = {"admin": "admin-pw", "dev": "dev-pw"}
    access = full_access("admin", "dev")
    access["adminPolicy"] = {"users": ["admin"], "actions": []}
    htpasswd = write_htpasswd(tmp_path / "htpasswd", users)
    return {"auth": {"htpasswd": {"path": str(htpasswd)}}, "accessControl": access}


def test_only_administrators_read_the_report(tmp_path: Path) -> None:
    with registry(http=_auth(tmp_path)) as client:
        anonymous = client.get(REPORT)
        assert anonymous.status_code == 401
        assert "WWW-Authenticate" in anonymous.headers
        developer = client.get(REPORT, auth=("dev", "dev-pw"))
        assert developer.status_code == 403
        assert developer.json()["errors"][0]["code"] == "DENIED"
        assert client.get(REPORT, auth=("admin", "admin-pw")).status_code == 200


def test_the_report_is_not_there_unless_turned_on() -> None:
    with registry(report=False) as client:
        answer = client.get(REPORT)
        assert answer.status_code == 404
        discovered = client.get("/v2/_oci/ext/discover").json()
    assert "_ocireg/clients" not in str(discovered)


def test_discovery_lists_the_report() -> None:
    with registry() as client:
        discovered = client.get("/v2/_oci/ext/discover")
    (ocireg,) = [e for e in discovered.json()["extensions"] if e["name"] == "_ocireg"]
    assert REPORT in ocireg["endpoints"]
    assert "clientreport" in ocireg["description"]


def test_a_client_that_varies_its_user_agent_cannot_grow_the_report() -> None:
    extensions = {"clientreport": {"maxClients": 3}}
    with registry(extensions=extensions) as client:
        for number in range(50):
            digest = "md5:" + f"{number:032x}"  # a departure for each, to fill examples
            client.head(f"/v2/a/blobs/{digest}", headers={"User-Agent": f"agent-{number}"})
        report = client.get(REPORT).json()
    agents = [entry["userAgent"] for entry in report["clients"]]
    # testclient's own GET of the report is not judged; the first three agents, then the rest
    assert agents == ["(other clients)", "agent-0", "agent-1", "agent-2"]
    others = departures(report, "(other clients)")["digest-algorithm"]
    assert others["count"] == 47
    assert others["example"]["path"] == "/v2/a/blobs/md5:" + f"{3:032x}"  # the first one kept


def _session(client: Any) -> list[tuple[str, int, str]]:
    """A session of good and bad requests; what the client sees of each answer (the status,
    the error codes, and the body of a success, where it is the same on every registry)."""
    seen = []

    def keep(label: str, answer: Any) -> None:
        body = answer.text if answer.status_code >= 400 else ""
        codes = sorted(e["code"] for e in answer.json()["errors"]) if body else []
        seen.append((label, answer.status_code, ",".join(codes)))

    document = image_manifest(client, "same/app")
    body = canonical(document)
    keep("put", client.put("/v2/same/app/manifests/v1", content=body,
                           headers={"Content-Type": OCI_MANIFEST}))  # fmt: skip
    keep("put-no-type", client.put("/v2/same/app/manifests/v2", content=body))
    keep("get-json", client.get("/v2/same/app/manifests/v1", headers={"Accept": "text/x"}))
    keep("head-md5", client.head("/v2/same/app/blobs/md5:" + "0" * 32))
    keep("get-md5", client.get("/v2/same/app/blobs/md5:" + "0" * 32))
    keep("bad-name", client.get("/v2/Bad_Name/tags/list"))
    started = client.post("/v2/same/app/blobs/uploads/")
    keep("post", started)
    location = started.headers["Location"]
    keep("patch-range", client.patch(location, content=b"abc",
                                     headers={"Content-Range": "5-9"}))  # fmt: skip
    keep("put-wrong", client.put(location, params={"digest": sha256(b"other")}))
    keep("head-missing", client.head(f"/v2/same/app/blobs/{sha256(b'none')}"))
    keep("manifest-bad", client.put("/v2/same/app/manifests/v3", content=b"{",
                                    headers={"Content-Type": OCI_MANIFEST}))  # fmt: skip
    return seen


def test_answers_are_the_same_with_the_report_on() -> None:
    with registry(report=False) as plain:
        expected = _session(plain)
    with registry(report=True) as watched:
        assert _session(watched) == expected
        report = watched.get(REPORT).json()
    found = departures(report, "testclient")
    # the session broke these rules, so the report did judge it
    assert {"manifest-put-content-type", "manifest-get-accept", "digest-algorithm"} <= set(found)
    (client,) = [c for c in report["clients"] if c["userAgent"] == "testclient"]
    levels = [departure["level"] for departure in client["departures"]]
    assert levels == sorted(levels, key=["MUST", "SHOULD", "info"].index)  # MUSTs first
    assert levels[0] == "MUST"  # the PATCH without application/octet-stream
