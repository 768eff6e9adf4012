"""CVE scanning end to end, with the real inventory readers: images built from this machine's
own package records are pushed over HTTP, real advisories are imported with ``ocireg cve
update``, and what a user sees through GraphQL, ``ocireg cve list`` and the events
extension's ``zotregistry.image.scanned`` is checked: the matches and the non-matches (a fixed
version, another release)."""

from __future__ import annotations

import gzip
import importlib.metadata
import io
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ocireg.ext.cve.store import CveStore
from tests.eventsink import Receiver
from tests.ext import osvdata
from tests.ext.test_cve_search import (
    UI_CVE_LIST,
    UI_REPO,
    ZLI_CVE_LIST,
    ZLI_FIXED,
    ZLI_IMAGES_FOR_CVE,
    _cli,
    _export,
    _tagged,
    _wait_for,
    ask,
)
from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, put_manifest
from tests.tools import missing

DPKG_STATUS = Path("/var/lib/dpkg/status")
OS_RELEASE = Path("/etc/os-release")
DIST = "usr/lib/python3/dist-packages"
# bookworm's libssl3 before DSA-5532-1 (bookworm's own changelog names this version)
OLD_LIBSSL3 = "3.0.11-1~deb12u1"
VULNERABLE, FIXED = "e2e/app:vulnerable", "e2e/app:fixed"
SCANNED = "zotregistry.image.scanned"
Registry = tuple[LiveServer, dict[str, str]]  # the server, and each image's digest


def _bookworm_records() -> tuple[str, str]:
    """This machine's os-release and dpkg status, the latter with libssl3 set back to a
    version DSA-5532-1 affects; skips where the machine is not Debian 12 with libssl3."""
    if not DPKG_STATUS.is_file() or not OS_RELEASE.is_file():
        missing("no dpkg database on this machine to build a Debian image from")
    release = OS_RELEASE.read_text()
    status = DPKG_STATUS.read_text()
    stanza = re.search(r"^Package: libssl3\n(?:.+\n)*?Version: (.+)$", status, re.M)
    if 'VERSION_ID="12"' not in release or "ID=debian" not in release or stanza is None:
        missing("the dpkg records are not Debian 12's with libssl3 (DSA-5532-1's release)")
    assert stanza is not None
    start, end = stanza.span(1)
    return release, status[:start] + OLD_LIBSSL3 + status[end:]


def _requests_metadata(version: str) -> bytes:
    """requests' real METADATA (installed here), as the release ``version`` ships it."""
    try:
        text = importlib.metadata.distribution("requests").read_text("METADATA") or ""
    except importlib.metadata.PackageNotFoundError:
        missing("requests is not installed: no real METADATA to build the Python layer from")
    return re.sub(r"^Version: .*$", f"Version: {version}", text, count=1, flags=re.M).encode()


def _requests_layer(version: str) -> bytes:
    return _layer({f"{DIST}/requests-{version}.dist-info/METADATA": _requests_metadata(version)})


def _layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in files.items():
            member = tarfile.TarInfo(path)
            member.size = len(data)
            member.mode = 0o644
            tar.addfile(member, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _push(client: httpx.Client, reference: str, layers: list[bytes]) -> str:
    repo, tag = reference.split(":")
    response = put_manifest(client, repo, tag, image_manifest(client, repo, layers))
    return str(response.headers["Docker-Content-Digest"])


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    sink = Receiver().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Registry]:
    release, status = _bookworm_records()
    base = _layer({"etc/os-release": release.encode(), "var/lib/dpkg/status": status.encode()})
    directory = tmp_path_factory.mktemp("cve-e2e")
    sink = {"type": "http", "address": receiver.url, "events": [SCANNED]}
    extra = {"extensions": {"search": {"cve": {}}, "events": {"sinks": [sink]}, "sbom": {}}}
    with live_server(directory / "server", extra) as server:
        export = _export(directory / "osv", osvdata.ALL)
        done = _cli(
            "cve", "update", str(directory / "server" / "config.json"), "--from", str(export)
        )
        assert done.returncode == 0, done.stderr
        assert f"{len(osvdata.ALL)} stored" in done.stdout
        with httpx.Client(base_url=server.url, timeout=30) as client:
            digests = {
                reference: _push(client, reference, [base, _requests_layer(version)])
                for reference, version in ((VULNERABLE, "2.30.0"), (FIXED, "2.31.0"))
            }
        store = CveStore.reader(server.root / ".ocireg" / "meta.db")
        _wait_for(lambda: set(digests.values()) <= set(store.scan_counts()))
        store.close()
        _wait_for(lambda: len(_tagged(server)) == len(digests))  # search reads the meta DB
        yield server, digests


@pytest.fixture
def client(registry: Registry) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry[0].url, timeout=30) as http:
        yield http


def _cves(client: httpx.Client, image: str) -> dict[str, list[dict[str, str]]]:
    found = ask(client, ZLI_CVE_LIST % (image, 100, 0, "", "", ""))["CVEListForImage"]
    return {cve["Id"]: cve["PackageList"] for cve in found["CVEList"]}


def test_the_images_cves_come_from_their_real_packages(client: httpx.Client) -> None:
    vulnerable = _cves(client, VULNERABLE)
    assert sorted(vulnerable) == ["CVE-2023-32681", "CVE-2023-5363"]
    # libssl-dev, of the same source but at this machine's version, is past the fix; and
    # DSA-5343-1 (openssl in Debian 11) is another release's
    assert vulnerable["CVE-2023-5363"] == [{
        "Name": "libssl3", "PackagePath": "var/lib/dpkg/status",
        "InstalledVersion": OLD_LIBSSL3, "FixedVersion": "3.0.11-1~deb12u2",
    }]  # fmt: skip
    assert vulnerable["CVE-2023-32681"] == [{
        "Name": "requests", "PackagePath": f"{DIST}/requests-2.30.0.dist-info/METADATA",
        "InstalledVersion": "2.30.0", "FixedVersion": "2.31.0",
    }]  # fmt: skip
    # the shared base layer's finding, without the fixed requests
    assert sorted(_cves(client, FIXED)) == ["CVE-2023-5363"]


def test_the_summaries_zli_and_the_web_ui_show(client: httpx.Client) -> None:
    found = ask(client, UI_CVE_LIST % VULNERABLE)["CVEListForImage"]
    assert found["Summary"] == {
        "Count": 2, "UnknownCount": 1, "LowCount": 0, "MediumCount": 1, "HighCount": 0,
        "CriticalCount": 0, "MaxSeverity": "MEDIUM",
    }  # fmt: skip
    repo = ask(client, UI_REPO % "e2e/app")["ExpandedRepoInfo"]
    assert {i["Tag"]: i["Vulnerabilities"] for i in repo["Images"]} == {
        "vulnerable": {"MaxSeverity": "MEDIUM", "Count": 2},
        "fixed": {"MaxSeverity": "UNKNOWN", "Count": 1},
    }


def test_images_for_a_cve_and_where_it_is_fixed(client: httpx.Client) -> None:
    def images(cve: str) -> list[str]:
        found = ask(client, ZLI_IMAGES_FOR_CVE % cve)["ImageListForCVE"]
        return [f"{i['RepoName']}:{i['Tag']}" for i in found["Results"]]

    assert images("CVE-2023-5363") == [FIXED, VULNERABLE]
    assert images("CVE-2023-32681") == [VULNERABLE]
    assert images("CVE-2023-0286") == []  # DSA-5343-1's: Debian 11's openssl only
    fixed = ask(client, ZLI_FIXED % ("CVE-2023-32681", "e2e/app"))["ImageListWithCVEFixed"]
    assert [i["Tag"] for i in fixed["Results"]] == ["fixed"]
    none = ask(client, ZLI_FIXED % ("CVE-2023-5363", "e2e/app"))["ImageListWithCVEFixed"]
    assert none["Results"] == []


def test_the_cli_lists_what_the_image_holds(registry: Registry) -> None:
    table = _cli("cve", "list", registry[0].url, VULNERABLE)
    assert table.returncode == 0, table.stderr
    rows = [line.split()[:5] for line in table.stdout.splitlines()[1:]]
    assert rows == [
        ["CVE-2023-32681", "MEDIUM", "requests", "2.30.0", "2.31.0"],
        ["CVE-2023-5363", "UNKNOWN", "libssl3", OLD_LIBSSL3, "3.0.11-1~deb12u2"],
    ]


def test_each_scan_sends_an_event_with_its_summary(registry: Registry, receiver: Receiver) -> None:
    digests = registry[1]
    got = receiver.wait_for(lambda events: len(events) >= 2)
    assert {event.type for event in got} == {SCANNED}
    data = {event.data["digest"]: event.data for event in got}
    assert set(data) == set(digests.values())
    vulnerable = data[digests[VULNERABLE]]
    assert vulnerable["name"] == "e2e/app"
    assert vulnerable["reference"] == digests[VULNERABLE]
    assert vulnerable["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert vulnerable["vulnerabilities"] == {
        "MaxSeverity": "MEDIUM", "Count": 2, "UnknownCount": 1, "LowCount": 0,
        "MediumCount": 1, "HighCount": 0, "CriticalCount": 0,
    }  # fmt: skip
    fixed = data[digests[FIXED]]["vulnerabilities"]
    assert (fixed["MaxSeverity"], fixed["Count"], fixed["UnknownCount"]) == ("UNKNOWN", 1, 1)
    assert vulnerable["actor"] == {"name": ""}  # made in the background, by no request


def test_the_sbom_lists_the_images_real_packages(client: httpx.Client, registry: Registry) -> None:
    response = client.get("/v2/e2e/app/_ocireg/sbom", params={"reference": "vulnerable"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.cyclonedx+json"
    digest = registry[1][VULNERABLE]
    assert response.headers["docker-content-digest"] == digest
    bom = response.json()
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.5")
    assert bom["metadata"]["component"]["name"] == f"e2e/app@{digest}"
    components = {c["name"]: c for c in bom["components"]}
    assert components["debian"]["type"] == "operating-system"
    libssl3 = components["libssl3"]
    assert libssl3["version"] == OLD_LIBSSL3
    assert libssl3["purl"].startswith(f"pkg:deb/debian/libssl3@{OLD_LIBSSL3}?")
    assert "distro=debian-12" in libssl3["purl"] and "upstream=openssl" in libssl3["purl"]
    assert components["requests"]["purl"] == "pkg:pypi/requests@2.30.0"
    installed = DPKG_STATUS.read_text().count("Status: install ok installed")
    debs = [c for c in bom["components"] if c.get("purl", "").startswith("pkg:deb/")]
    assert len(debs) == installed  # every package this machine's dpkg has installed
    by_digest = client.get("/v2/e2e/app/_ocireg/sbom", params={"reference": digest})
    assert by_digest.json()["components"] == bom["components"]


def test_the_sbom_refuses_what_it_cannot_list(client: httpx.Client) -> None:
    def get(repository: str, reference: str | None) -> httpx.Response:
        params = {} if reference is None else {"reference": reference}
        return client.get(f"/v2/{repository}/_ocireg/sbom", params=params)

    def code(response: httpx.Response) -> tuple[int, str]:
        return response.status_code, response.json()["errors"][0]["code"]

    assert code(get("e2e/app", "v9")) == (404, "MANIFEST_UNKNOWN")
    assert code(get("e2e/none", "v1")) == (404, "MANIFEST_UNKNOWN")
    # a reference that is no tag or digest names nothing, as a manifest GET of it answers
    assert code(get("e2e/app", None)) == (404, "MANIFEST_UNKNOWN")
    assert code(get("e2e/app", "not a tag!")) == (404, "MANIFEST_UNKNOWN")
    artifact = image_manifest(client, "e2e/artifact", [b"not an image layer"])
    artifact["layers"][0]["mediaType"] = "application/vnd.example.data"
    put_manifest(client, "e2e/artifact", "v1", artifact)
    assert code(get("e2e/artifact", "v1")) == (400, "UNSUPPORTED")
    found = client.get("/v2/e2e/app/_oci/ext/discover").json()["extensions"]
    ocireg = next(entry for entry in found if entry["name"] == "_ocireg")
    assert ocireg["endpoints"] == ["/v2/e2e/app/_ocireg/sbom"]
