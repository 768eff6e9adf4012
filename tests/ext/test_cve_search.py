"""CVE scanning in a live registry: images scanned at push, results kept in the meta DB, every
CVE query zot's clients (zli, the web UI) send answered in their shape, the CLI, and an update
that matches again only the images it can affect. The inventory readers are stood in for
(fakeinventory/sitecustomize.py): these tests are about what happens to an inventory."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ocireg.ext.cve.store import CveStore
from tests.ext import cveimages, osvdata
from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, put_manifest

ROOT = Path(__file__).resolve().parents[2]
STAND_IN = Path(__file__).resolve().parent / "fakeinventory"
SEARCH = "/v2/_zot/ext/search"
IMAGES = {
    "cve/bullseye:v1": "BULLSEYE",
    "cve/bullseye:v2": "BULLSEYE_FIXED",
    "cve/alpine:3.17": "ALPINE_317",
    "cve/bookworm:12": "BOOKWORM",
}
# what zli sends (zot's pkg/cli/client), and what the web UI sends
ZLI_CVE_LIST = """{ CVEListForImage(image: "%s", requestedPage: {limit: %d, offset: %d,
  sortBy: SEVERITY}, searchedCVE: "%s", excludedCVE: "%s", severity: "%s") {
  Tag CVEList { Id Title Severity Description
    PackageList { Name PackagePath InstalledVersion FixedVersion } }
  Summary { Count UnknownCount LowCount MediumCount HighCount CriticalCount MaxSeverity }
  Page { TotalCount ItemCount } } }"""
ZLI_IMAGES_FOR_CVE = """{ ImageListForCVE(id: "%s", requestedPage: {sortBy: ALPHABETIC_ASC}) {
  Results { RepoName Tag Digest MediaType Manifests { Digest ConfigDigest Size
    Platform { Os Arch } IsSigned Layers { Size Digest } LastUpdated } LastUpdated Size IsSigned }
  Page { TotalCount ItemCount } } }"""
ZLI_FIXED = """{ ImageListWithCVEFixed(id: "%s", image: "%s") {
  Results { RepoName Tag Digest Vulnerabilities { MaxSeverity Count } }
  Page { TotalCount ItemCount } } }"""
ZLI_DIFF = """{ CVEDiffListForImages(minuend: {Repo: "%s", Tag: "%s"},
  subtrahend: {Repo: "%s", Tag: "%s"}, requestedPage: {limit: 100, offset: 0}) {
  Minuend { Repo Tag } Subtrahend { Repo Tag }
  CVEList { Id Title Description Severity Reference
    PackageList { Name PackagePath InstalledVersion FixedVersion } }
  Summary { Count UnknownCount LowCount MediumCount HighCount CriticalCount MaxSeverity }
  Page { TotalCount ItemCount } } }"""
UI_CVE_LIST = """{ CVEListForImage(image: "%s", requestedPage: {limit: 10, offset: 0},
  searchedCVE: "") { Tag Page { ItemCount TotalCount }
  Summary { Count UnknownCount LowCount MediumCount HighCount CriticalCount MaxSeverity }
  CVEList { Id Title Description Severity Reference
    PackageList { Name PackagePath InstalledVersion FixedVersion } } } }"""
UI_REPO = """{ ExpandedRepoInfo(repo: "%s") { Images { Tag Vulnerabilities { MaxSeverity Count } }
  Summary { Name NewestImage { Tag Vulnerabilities { MaxSeverity Count } } } } }"""


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(STAND_IN), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path}


def _export(where: Path, records: list[dict[str, Any]]) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for record in records:
        (where / f"{record['id']}.json").write_text(json.dumps(record))
    return where


def _push(client: httpx.Client, reference: str, inventory: str) -> str:
    repo, tag = reference.split(":")
    layer = json.dumps({"inventory": inventory, "image": reference}).encode()
    document = image_manifest(client, repo, [layer])
    response = put_manifest(client, repo, tag, document)
    return str(response.headers["Docker-Content-Digest"])


def _store(server: LiveServer) -> CveStore:
    return CveStore.reader(server.root / ".ocireg" / "meta.db")


def _tagged(server: LiveServer) -> list[tuple[str, str]]:
    with sqlite3.connect(server.root / ".ocireg" / "meta.db") as db:
        return db.execute("SELECT repo, tag FROM tags").fetchall()


def _wait_for(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def _scans(client: httpx.Client) -> float:
    """``ocireg_cve_scans_total`` from the registry's metrics."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "ocireg_cve_scans_total":
                return float(sample.value)
    raise AssertionError("no ocireg_cve_scans_total in the metrics")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocireg", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    directory = tmp_path_factory.mktemp("cve")
    export = _export(directory / "osv", osvdata.ALL)
    extra = {"extensions": {"search": {"cve": {"sources": [str(export)]}}, "metrics": {}}}
    with live_server(directory / "server", extra, _env()) as server:
        # the configured source is read first (1 s after start): pushes then meet the data
        _wait_for(lambda: any(e["msg"] == "cve update done" for e in server.log_events()))
        with httpx.Client(base_url=server.url, timeout=30) as client:
            digests = {ref: _push(client, ref, inventory) for ref, inventory in IMAGES.items()}
            artifact = image_manifest(client, "cve/artifact", [b"not an image layer"])
            artifact["layers"][0]["mediaType"] = "application/vnd.example.data"
            put_manifest(client, "cve/artifact", "v1", artifact)
        store = _store(server)
        wanted = set(digests.values())
        _wait_for(lambda: wanted <= set(store.scan_counts()))
        store.close()
        # a scan can finish before the meta DB (which search reads) has the image: it records
        # pushes within about a second
        _wait_for(lambda: len(_tagged(server)) == len(IMAGES) + 1)
        yield server, digests


@pytest.fixture
def client(registry: tuple[LiveServer, dict[str, str]]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry[0].url, timeout=30) as http:
        yield http


def ask(client: httpx.Client, query: str) -> Any:
    response = client.post(SEARCH, json={"query": query})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def test_zlis_cve_list_is_every_cve_of_the_image(client: httpx.Client) -> None:
    found = ask(client, ZLI_CVE_LIST % ("cve/bullseye:v1", 100, 0, "", "", ""))["CVEListForImage"]
    assert found["Tag"] == "v1"
    ids = [cve["Id"] for cve in found["CVEList"]]
    assert ids[0] == "CVE-2021-44228"  # CRITICAL first, then by ID within a severity
    assert sorted(ids) == sorted([
        "CVE-2021-44228", "CVE-2020-28498", "CVE-2023-32681", "CVE-2020-14040",
        "CVE-2022-4304", "CVE-2022-4450", "CVE-2023-0215", "CVE-2023-0286",
    ])  # fmt: skip
    assert found["Summary"] == {
        "Count": 8, "UnknownCount": 5, "LowCount": 0, "MediumCount": 2, "HighCount": 0,
        "CriticalCount": 1, "MaxSeverity": "CRITICAL",
    }  # fmt: skip
    assert found["Page"] == {"TotalCount": 8, "ItemCount": 8}
    requests = next(c for c in found["CVEList"] if c["Id"] == "CVE-2023-32681")
    assert requests["Severity"] == "MEDIUM"  # GHSA's vector; PYSEC has none
    assert requests["PackageList"] == [{
        "Name": "Requests", "PackagePath": f"{cveimages.DIST}/requests-2.30.0.dist-info",
        "InstalledVersion": "2.30.0", "FixedVersion": "2.31.0",
    }]  # fmt: skip


def test_filters_and_pages_as_zot(client: httpx.Client) -> None:
    def ids(*arguments: Any) -> list[str]:
        found = ask(client, ZLI_CVE_LIST % ("cve/bullseye:v1", *arguments))["CVEListForImage"]
        return [cve["Id"] for cve in found["CVEList"]]

    assert ids(100, 0, "", "", "CRITICAL") == ["CVE-2021-44228"]
    assert ids(100, 0, "LOG4J", "", "") == ["CVE-2021-44228"]  # a package name, any case
    assert len(ids(100, 0, "", "libssl1.1", "")) == 4
    assert ids(2, 0, "", "", "") == ["CVE-2021-44228", "CVE-2020-28498"]
    page = ask(client, ZLI_CVE_LIST % ("cve/bullseye:v1", 2, 6, "", "", ""))["CVEListForImage"]
    assert page["Page"] == {"TotalCount": 8, "ItemCount": 2}


def test_a_page_shows_each_cve_as_the_whole_list_does(client: httpx.Client) -> None:
    """A page reads the packages and words of its own CVEs only; paged, filtered by text or
    not, each CVE reads the same."""

    def cves(limit: int, offset: int, searched: str = "") -> list[Any]:
        query = ZLI_CVE_LIST % ("cve/bullseye:v1", limit, offset, searched, "", "")
        return list(ask(client, query)["CVEListForImage"]["CVEList"])

    whole = cves(100, 0)
    assert [cve for offset in range(0, 8, 3) for cve in cves(3, offset)] == whole
    assert cves(100, 0, "cve-") == whole  # every CVE's text read, then the page
    assert len(whole) == 8
    assert all(cve["PackageList"] and cve["Title"] and cve["Description"] for cve in whole)
    openssl = next(cve for cve in whole if cve["Id"] == "CVE-2023-0286")
    assert openssl["Title"] == "openssl - security update"  # the DSA's words
    assert [p["Name"] for p in openssl["PackageList"]] == ["libssl1.1"]


def test_the_web_uis_queries(client: httpx.Client) -> None:
    found = ask(client, UI_CVE_LIST % "cve/alpine:3.17")["CVEListForImage"]
    assert [c["Id"] for c in found["CVEList"]] == ["CVE-2023-0286"]
    assert found["CVEList"][0]["Reference"] == "https://www.cve.org/CVERecord?id=CVE-2023-0286"
    repo = ask(client, UI_REPO % "cve/bullseye")["ExpandedRepoInfo"]
    summaries = {i["Tag"]: i["Vulnerabilities"] for i in repo["Images"]}
    assert summaries == {
        "v1": {"MaxSeverity": "CRITICAL", "Count": 8},
        "v2": {"MaxSeverity": "NONE", "Count": 0},  # scanned, clean
    }


def test_images_for_a_cve_and_where_it_is_fixed(client: httpx.Client) -> None:
    found = ask(client, ZLI_IMAGES_FOR_CVE % "CVE-2023-0286")["ImageListForCVE"]
    assert [(i["RepoName"], i["Tag"]) for i in found["Results"]] == [
        ("cve/alpine", "3.17"), ("cve/bullseye", "v1")
    ]  # fmt: skip
    assert found["Page"] == {"TotalCount": 2, "ItemCount": 2}
    assert ask(client, ZLI_IMAGES_FOR_CVE % "CVE-1999-0001")["ImageListForCVE"]["Results"] == []
    fixed = ask(client, ZLI_FIXED % ("CVE-2021-44228", "cve/bullseye"))["ImageListWithCVEFixed"]
    assert [i["Tag"] for i in fixed["Results"]] == ["v2"]


def test_the_diff_of_two_images(client: httpx.Client) -> None:
    query = ZLI_DIFF % ("cve/bullseye", "v1", "cve/alpine", "3.17")
    found = ask(client, query)["CVEDiffListForImages"]
    assert found["Minuend"] == {"Repo": "cve/bullseye", "Tag": "v1"}
    assert found["Subtrahend"] == {"Repo": "cve/alpine", "Tag": "3.17"}
    ids = {cve["Id"] for cve in found["CVEList"]}
    assert len(ids) == 7 and "CVE-2023-0286" not in ids
    assert found["Summary"]["Count"] == 7


def test_an_image_not_scanned_says_so(client: httpx.Client) -> None:
    body = client.post(SEARCH, json={"query": UI_CVE_LIST % "cve/artifact:v1"}).json()
    assert body["errors"][0]["message"] == "image cve/artifact:v1 has not been scanned yet"
    summary = ask(client, UI_REPO % "cve/artifact")["ExpandedRepoInfo"]["Images"][0]
    assert summary["Vulnerabilities"] == {"MaxSeverity": "", "Count": 0}  # zot's "not scanned"
    unknown = client.post(SEARCH, json={"query": UI_CVE_LIST % "cve/nothing:v1"}).json()
    assert unknown["errors"][0]["message"] == "image cve/nothing:v1 not found"


def test_the_cli_prints_a_table_and_json(registry: tuple[LiveServer, dict[str, str]]) -> None:
    url = registry[0].url
    table = _cli("cve", "list", url, "cve/alpine:3.17")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split() == ["ID", "SEVERITY", "PACKAGE", "INSTALLED", "FIXED", "TITLE"]
    assert row.split()[:5] == ["CVE-2023-0286", "UNKNOWN", "libcrypto3", "3.0.7-r2", "3.0.8-r0"]
    as_json = json.loads(_cli("cve", "list", url, "cve/alpine:3.17", "--json").stdout)
    assert as_json["Summary"]["Count"] == 1
    images = _cli("cve", "images", url, "CVE-2023-0286")
    assert [line.split()[:2] for line in images.stdout.splitlines()[1:]] == [
        ["cve/alpine", "3.17"], ["cve/bullseye", "v1"]
    ]  # fmt: skip
    missing = _cli("cve", "list", url, "cve/nothing:v1")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_an_update_rescans_only_what_it_affects_and_a_restart_nothing(
    registry: tuple[LiveServer, dict[str, str]], tmp_path: Path, client: httpx.Client
) -> None:
    server, digests = registry
    store = _store(server)
    before = store.scan_counts()
    scans = _scans(client)
    assert scans == sum(before.values())
    gone = osvdata.withdrawn(osvdata.GO_2020_0015, "2024-02-01T00:00:00Z")
    export = _export(tmp_path / "withdrawn", [gone])
    config = server.root.parent / "config.json"
    done = _cli("cve", "update", str(config), "--from", str(export))
    assert done.returncode == 0, done.stderr
    assert "1 stored (1 withdrawn)" in done.stdout
    # both bullseye images hold golang.org/x/text (v2 a fixed one): only they are matched again
    assert "2 scanned image(s) matched again" in done.stdout
    after = store.scan_counts()
    holding = {digests["cve/bullseye:v1"], digests["cve/bullseye:v2"]}
    assert {d: after[d] - before[d] for d in before} == {
        d: 1 if d in holding else 0 for d in before
    }
    assert _scans(client) == scans + 2  # what the metrics say too
    found = ask(client, UI_CVE_LIST % "cve/bullseye:v1")["CVEListForImage"]
    assert "CVE-2020-14040" not in {c["Id"] for c in found["CVEList"]}
    assert found["Summary"]["Count"] == 7
    server.process.terminate()
    server.process.wait(timeout=30)
    extensions = json.loads(config.read_text())["extensions"]
    with live_server(server.root.parent, {"extensions": extensions}, _env()) as again:
        time.sleep(8)  # past the first background round (5 s after start) and the update's
        assert store.scan_counts() == after
        with httpx.Client(base_url=again.url, timeout=30) as fresh:
            assert _scans(fresh) == scans + 2
        with httpx.Client(base_url=again.url, timeout=30) as fresh:
            found = ask(fresh, UI_CVE_LIST % "cve/bullseye:v1")["CVEListForImage"]
            assert found["Summary"]["Count"] == 7  # kept, not rescanned
    store.close()
