"""Screenshots of the main pages for docs/ui.md, made by the test run (and so always of the
pages as they are). Each also checks the page it shoots rendered what it is about."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.ext.ui.conftest import log_in
from tests.liveserver import LiveServer

DOCS = Path(__file__).resolve().parents[3] / "docs" / "ui"


def _pull(registry: LiveServer, repo: str, tag: str, times: int) -> None:
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    for _ in range(times):
        got = httpx.get(f"{registry.url}/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
        assert got.status_code == 200


def _shoot(page: Page, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"{name}.png"), full_page=False)


def test_screenshots_of_the_main_pages(page: Page, registry: LiveServer) -> None:
    _pull(registry, "team/web", "v2", 3)
    _pull(registry, "tools/cli", "1.0", 1)
    time.sleep(1.5)  # pulls reach the meta DB about once a second
    log_in(page, registry.url, "ann", "ann-pw")
    page.goto(f"{registry.url}/home/repo/team/web")
    page.get_by_role("button", name="☆ Star").click()
    try:
        page.goto(f"{registry.url}/home")
        expect(page.get_by_role("heading", name="Your stars")).to_be_visible()
        _shoot(page, "home")
        page.goto(f"{registry.url}/home/explore?sort=downloads")
        expect(page.locator(".results .card-title").first).to_have_text("team/web")
        _shoot(page, "explore")
        page.goto(f"{registry.url}/home/repo/team/web")
        expect(page.locator("table.tags tbody tr")).to_have_count(2)
        _shoot(page, "repository")
        page.goto(f"{registry.url}/home/image/team/web/tag/v2")
        expect(page.get_by_role("img", name="Layer sizes")).to_be_visible()
        _shoot(page, "image")
        page.goto(f"{registry.url}/home/apikeys")
        page.get_by_label("Label").fill("laptop")
        page.get_by_role("button", name="Create key").click()
        expect(page.get_by_role("status")).to_be_visible()
        _shoot(page, "apikeys")
        page.get_by_role("button", name="Revoke laptop").click()
    finally:
        page.goto(f"{registry.url}/home/repo/team/web")
        page.get_by_role("button", name="★ Starred").click()
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{registry.url}/home/login")
    _shoot(page, "login")
