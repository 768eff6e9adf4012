"""One registry with the UI, seeded with images, and one Chromium for the whole test session.

The browser is Debian's chromium driven by Playwright (its own browser download cannot work
here). Each test gets a fresh context: no cookies carried from one test to the next.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth.registries import EVERY_ACTION, write_htpasswd
from tests.liveserver import LiveServer, live_server
from tests.oci import (
    OCI_INDEX,
    OCI_LAYER,
    canonical,
    descriptor,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)
from tests.tools import missing

pytest.importorskip("playwright", reason="pip install playwright (the test extra)")
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM = Path("/usr/lib/chromium/chromium")
USERS = {"ann": "ann-pw", "bob": "bob-pw"}
# Guests and bob read everything but secret/**, which only ann reads.
ACCESS = {
    "repositories": {
        "**": {
            "policies": [{"users": ["ann"], "actions": EVERY_ACTION}],
            "defaultPolicy": ["read"],
            "anonymousPolicy": ["read"],
        },
        "secret/**": {"policies": [{"users": ["ann"], "actions": EVERY_ACTION}]},
    }
}
DESCRIPTION = "org.opencontainers.image.description"
SOURCE = "org.opencontainers.image.source"
VENDOR = "org.opencontainers.image.vendor"
LICENSES = "org.opencontainers.image.licenses"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing("chromium is not installed; install it with: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context(viewport={"width": 1280, "height": 860})
    fresh.set_default_timeout(15_000)
    yield fresh
    fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def ui_config(directory: Path, **auth: Any) -> dict[str, Any]:
    htpasswd = write_htpasswd(directory / "htpasswd", USERS)
    return {
        "http": {
            "realm": "ui",
            "auth": {"htpasswd": {"path": str(htpasswd)}, "apikey": True, **auth},
            "accessControl": ACCESS,
        },
        "extensions": {"search": {}, "ui": {}},
    }


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("ui")
    with live_server(directory, ui_config(directory)) as live:
        with httpx.Client(base_url=live.url, auth=("ann", "ann-pw"), timeout=30) as ann:
            seed(ann)
            wait_for_search(ann, 4)
        yield live


# When each image was made, for a registry whose pages must look the same on every run (the
# screenshots): search's LastUpdated is the config's "created", and the pages show a time older
# than a month as its date. Without them, it is the push time ("just now", "2 minutes ago").
DATES = {  # in the order seed pushes them: search sorts "recently updated" by push time
    "team/web:v1": "2026-02-02T09:00:00Z",
    "team/web:v2": "2026-02-09T09:00:00Z",
    "team/multi": "2026-02-14T09:00:00Z",
    "tools/cli:1.0": "2026-02-20T09:00:00Z",
    "secret/vault:v1": "2026-02-25T09:00:00Z",
    "secret/vault:derived": "2026-03-03T09:00:00Z",
    "team/api:1.0": "2026-03-05T09:00:00Z",
}


def history_config(arch: str, commands: list[str], created: str | None = None) -> bytes:
    history = [{"created": "2026-01-01T00:00:00Z", "created_by": c} for c in commands]
    history.insert(1, {"created_by": "ENV PATH=/usr/bin", "empty_layer": True})
    document = {
        "architecture": arch,
        "os": "linux",
        "history": history,
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    if created is not None:
        document["created"] = created
    return json.dumps(document).encode()


def _made(dated: bool, image: str, commands: list[str], arch: str = "amd64") -> bytes | None:
    """The config of a dated image (None: image_manifest's own, undated)."""
    return history_config(arch, commands, DATES[image]) if dated else None


def _push(client: httpx.Client, repo: str, ref: str, document: dict[str, Any]) -> dict[str, Any]:
    digest = put_manifest(client, repo, ref, document).headers["Docker-Content-Digest"]
    return {"mediaType": document["mediaType"], "digest": digest, "size": len(canonical(document))}


def seed(client: httpx.Client, dated: bool = False) -> None:
    """team/web (two tags, annotations, a referrer), team/multi (linux/amd64 and arm64),
    tools/cli, and secret/vault, which only ann may read; ``dated``: made at :data:`DATES`."""
    annotations = {
        DESCRIPTION: "The team's web server",
        SOURCE: "https://example.com/web",
        VENDOR: "Acme Widgets",
        LICENSES: "Apache-2.0",
    }
    layers = [b"a" * 30_000, b"b" * 9_000, b"c" * 1_000]
    commands = ["ADD rootfs.tar /", "RUN apk add nginx", "COPY site /srv"]
    config = history_config("amd64", commands, DATES["team/web:v1"] if dated else None)
    web = image_manifest(client, "team/web", layers, config=config, annotations=annotations)
    web_v1 = _push(client, "team/web", "v1", web)
    newer = image_manifest(
        client,
        "team/web",
        [*layers, b"d" * 500],
        config=history_config(
            "amd64",
            [*commands, "COPY extra /srv"],
            DATES["team/web:v2"] if dated else None,
        ),
        annotations=annotations,
    )
    _push(client, "team/web", "v2", newer)
    push_blob(client, "team/web", b"{}")
    push_blob(client, "team/web", b"sbom-document")
    sbom = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha256(b"{}"),
            "size": 2,
        },
        "layers": [descriptor(OCI_LAYER, b"sbom-document")],
        "subject": web_v1,
        "annotations": {"org.example.sbom.tool": "syft"},
    }
    put_manifest(client, "team/web", sha256(canonical(sbom)), sbom)
    children = []
    for arch in ("amd64", "arm64"):
        child = image_manifest(
            client,
            "team/multi",
            [arch.encode() * 100],
            config=history_config(
                arch, ["ADD rootfs.tar /"], DATES["team/multi"] if dated else None
            ),
        )
        pushed = _push(client, "team/multi", sha256(canonical(child)), child)
        children.append({**pushed, "platform": {"os": "linux", "architecture": arch}})
    _push(
        client,
        "team/multi",
        "latest",
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children},
    )
    cli = image_manifest(
        client,
        "tools/cli",
        [b"cli"],
        config=_made(dated, "tools/cli:1.0", ["ADD cli /usr/bin/"]),
        annotations={DESCRIPTION: "A small CLI"},
    )
    _push(client, "tools/cli", "1.0", cli)
    vault = image_manifest(
        client,
        "secret/vault",
        [b"vault"],
        config=_made(dated, "secret/vault:v1", ["ADD vault /"]),
        annotations={DESCRIPTION: "Top secret vault"},
    )
    _push(client, "secret/vault", "v1", vault)


def wait_for_search(client: httpx.Client, repositories: int) -> None:
    """The meta DB takes pushes in about once a second: wait until search sees them all."""
    query = '{ GlobalSearch(query: "") { Page { TotalCount } } }'
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = client.get("/v2/_zot/ext/search", params={"query": query}).json()
        if answer["data"]["GlobalSearch"]["Page"]["TotalCount"] >= repositories:
            return
        time.sleep(0.2)
    raise AssertionError("search never saw the seeded repositories")


def log_in(page: Page, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/home/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/home")


EXTERNAL_HOST = "registry.example.com"  # pull commands name it: pictures the same on every run
STAND_IN = Path(__file__).resolve().parents[1] / "fakeinventory"  # the CVE tests' inventories
ROOT = Path(__file__).resolve().parents[3]


def _scanning_env() -> dict[str, str]:
    import os

    path = os.pathsep.join([str(STAND_IN), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path}


def _osv_export(where: Path) -> Path:
    from tests.ext import osvdata

    where.mkdir(parents=True, exist_ok=True)
    for record in osvdata.ALL:
        (where / f"{record['id']}.json").write_text(json.dumps(record))
    return where


def seed_scanned(client: httpx.Client, dated: bool = False) -> None:
    """On top of :func:`seed`: team/api:1.0, whose one layer names the CVE tests' Debian 11
    inventory (so its scan finds CVEs), and secret/vault:derived, built on team/web:v1 (its
    layers, and one more), which only ann may read."""
    derived = image_manifest(
        client,
        "secret/vault",
        [b"a" * 30_000, b"b" * 9_000, b"c" * 1_000, b"vault app"],
        config=history_config(
            "amd64",
            ["ADD rootfs.tar /", "RUN apk add nginx", "COPY site /srv"],
            DATES["secret/vault:derived"] if dated else None,
        ),
    )
    _push(client, "secret/vault", "derived", derived)
    layer = json.dumps({"inventory": "BULLSEYE", "image": "team/api:1.0"}).encode()
    api = image_manifest(
        client,
        "team/api",
        [layer],
        config=_made(dated, "team/api:1.0", ["COPY api /srv"]),
        annotations={DESCRIPTION: "The team's API server"},
    )
    _push(client, "team/api", "1.0", api)


def wait_for_scan(client: httpx.Client, image: str) -> None:
    """Until search knows ``image`` and has its scan result."""
    query = "query ($i: String!) { Image(image: $i) { Vulnerabilities { MaxSeverity } } }"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = {"query": query, "variables": {"i": image}}
        answer = client.post("/v2/_zot/ext/search", json=body).json()
        summary = ((answer.get("data") or {}).get("Image") or {}).get("Vulnerabilities") or {}
        if summary.get("MaxSeverity"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{image} was never scanned")


@pytest.fixture(scope="session")
def scanning(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A registry with CVE scanning on (the CVE tests' stand-in inventories and OSV records),
    ``http.externalUrl`` set, ann an administrator, GC and scrub rounds every 5 s, and the seed
    plus :func:`seed_scanned`'s images."""
    directory = tmp_path_factory.mktemp("ui-scanning")
    config = ui_config(directory)
    config["http"]["externalUrl"] = f"https://{EXTERNAL_HOST}"
    config["http"]["accessControl"] = {
        **ACCESS,
        "adminPolicy": {"users": ["ann"], "actions": EVERY_ACTION},
    }
    config["extensions"]["search"] = {"cve": {"sources": [str(_osv_export(directory / "osv"))]}}
    # rounds to show on the operations page (nothing is old enough for GC to take)
    config["storage"] = {"gcInterval": "5s"}
    config["extensions"]["scrub"] = {"interval": "5s"}
    with live_server(directory / "server", config, _scanning_env()) as live:
        deadline = time.monotonic() + 60
        while not any(e.get("msg") == "cve update done" for e in live.log_events()):
            assert time.monotonic() < deadline, "the OSV records were never read"
            time.sleep(0.1)
        with httpx.Client(base_url=live.url, auth=("ann", "ann-pw"), timeout=30) as ann:
            seed(ann, dated=True)
            seed_scanned(ann, dated=True)
            wait_for_search(ann, 5)
            wait_for_scan(ann, "team/api:1.0")  # pushed last: the meta DB has the rest
        yield live
