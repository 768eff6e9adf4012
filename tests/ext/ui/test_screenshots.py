"""Screenshots of the main pages for docs/ui.md, made by the test run (and so always of the
pages as they are). Each also checks the page it shoots rendered what it is about.

The pictures must not change from one clean run to the next (``git status`` stays clean): the
registry's ``http.externalUrl`` gives the pull commands a fixed host instead of the test's
random port, and a picture is written only when it differs from the one in docs/ui beyond
noise (a relative time, a round's duration, a freshly made API key: a few hundred pixels).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.ext.ui.conftest import log_in
from tests.liveserver import LiveServer

DOCS = Path(__file__).resolve().parents[3] / "docs" / "ui"
NOISE = 0.005  # share of pixels that may differ and the picture still count as the same

# How many pixels of two PNGs differ (1.0 when their sizes do): decoded by the browser.
_DIFFERENCE = """async ([a, b]) => {
  const load = async (data) => {
    const image = new Image();
    image.src = "data:image/png;base64," + data;
    await image.decode();
    return image;
  };
  const pixels = (image) => {
    const canvas = new OffscreenCanvas(image.width, image.height);
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    return context.getImageData(0, 0, image.width, image.height).data;
  };
  const [x, y] = [await load(a), await load(b)];
  if (x.width !== y.width || x.height !== y.height) return 1;
  const [p, q] = [pixels(x), pixels(y)];
  let differing = 0;
  for (let i = 0; i < p.length; i += 4) {
    if (p[i] !== q[i] || p[i + 1] !== q[i + 1] || p[i + 2] !== q[i + 2]) differing++;
  }
  return differing / (p.length / 4);
}"""


def _pull(registry: LiveServer, repo: str, tag: str, times: int) -> None:
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    for _ in range(times):
        got = httpx.get(f"{registry.url}/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
        assert got.status_code == 200


def difference(page: Page, old: bytes, new: bytes) -> float:
    """The share of pixels that differ between two PNG pictures, in a blank page of the same
    browser (no page's Content Security Policy in the way)."""
    blank = page.context.new_page()
    try:
        encoded = [base64.b64encode(data).decode() for data in (old, new)]
        return float(blank.evaluate(_DIFFERENCE, encoded))
    finally:
        blank.close()


def _shoot(page: Page, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    target = DOCS / f"{name}.png"
    taken = page.screenshot(full_page=False)
    if target.exists() and difference(page, target.read_bytes(), taken) <= NOISE:
        return  # the same picture: leave the file (and git) alone
    target.write_bytes(taken)


def test_the_difference_of_pictures_counts_pixels(page: Page, scanning: LiveServer) -> None:
    page.goto(f"{scanning.url}/home/login")
    one = page.screenshot()
    assert difference(page, one, one) == 0.0
    page.goto(f"{scanning.url}/home/explore")
    assert difference(page, one, page.screenshot()) > NOISE


def test_screenshots_of_the_main_pages(page: Page, scanning: LiveServer) -> None:
    _pull(scanning, "team/web", "v2", 3)
    _pull(scanning, "tools/cli", "1.0", 1)
    time.sleep(1.5)  # pulls reach the meta DB about once a second
    log_in(page, scanning.url, "ann", "ann-pw")
    page.goto(f"{scanning.url}/home/repo/team/web")
    page.get_by_role("button", name="☆ Star").click()
    try:
        page.goto(f"{scanning.url}/home")
        expect(page.get_by_role("heading", name="Your stars")).to_be_visible()
        _shoot(page, "home")
        page.goto(f"{scanning.url}/home/explore?sort=downloads")
        expect(page.locator(".results .card-title").first).to_have_text("team/web")
        _shoot(page, "explore")
        page.goto(f"{scanning.url}/home/repo/team/web")
        expect(page.locator("table.tags tbody tr")).to_have_count(2)
        expect(page.locator(".side .pull-command").first).to_contain_text("registry.example.com")
        _shoot(page, "repository")
        page.goto(f"{scanning.url}/home/image/team/web/tag/v2")
        expect(page.get_by_role("img", name="Layer sizes")).to_be_visible()
        _shoot(page, "image")
        page.goto(f"{scanning.url}/home/image/team/api/tag/1.0?tab=vulnerabilities")
        expect(page.get_by_role("img", name="Severity chart")).to_be_visible()
        _shoot(page, "vulnerabilities")
        page.goto(f"{scanning.url}/home/image/team/web/tag/v1?tab=related")
        expect(page.locator("table.related").last).to_contain_text("secret/vault:derived")
        _shoot(page, "related")
        _operations(page, scanning)
        page.goto(f"{scanning.url}/home/apikeys")
        page.get_by_label("Label").fill("laptop")
        page.get_by_role("button", name="Create key").click()
        expect(page.get_by_role("status")).to_be_visible()
        _shoot(page, "apikeys")
        page.get_by_role("button", name="Revoke laptop").click()
    finally:
        page.goto(f"{scanning.url}/home/repo/team/web")
        page.get_by_role("button", name="★ Starred").click()
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{scanning.url}/home/login")
    _shoot(page, "login")


def _operations(page: Page, scanning: LiveServer) -> None:
    """Once GC and scrub have each run a round, and GC's estimate is made."""
    page.goto(f"{scanning.url}/home/operations")
    page.get_by_role("button", name="Estimate now").click()
    deadline = time.monotonic() + 30
    main = page.locator("main")
    while not all(
        text in main.inner_text() for text in ("freed", "every image passed", "in 5 repositories")
    ):
        assert time.monotonic() < deadline, "GC, scrub or the estimate never showed"
        time.sleep(0.5)
        page.reload()
    _shoot(page, "operations")
