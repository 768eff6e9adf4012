"""The operations page in Chromium (ocireg.ext.ui.operations): storage, the biggest images, the
last GC and scrub rounds and their results, a GC estimate; for administrators only."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.auth.registries import EVERY_ACTION
from tests.ext.ui.conftest import log_in, seed, ui_config, wait_for_search
from tests.liveserver import LiveServer, live_server
from tests.oci import push_blob

STRAY = b"s" * 12_345  # a blob no manifest references: GC frees it


@pytest.fixture(scope="module")
def operated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """GC and scrub every 2 s; ann administers (adminPolicy), bob does not."""
    directory = tmp_path_factory.mktemp("ui-operations")
    config = ui_config(directory)
    config["http"]["accessControl"]["adminPolicy"] = {"users": ["ann"], "actions": EVERY_ACTION}
    config["storage"] = {"gc": True, "gcInterval": "2s", "gcDelay": "1s"}
    config["extensions"]["scrub"] = {"interval": "2s"}
    with live_server(directory, config) as live:
        with httpx.Client(base_url=live.url, auth=("ann", "ann-pw"), timeout=30) as ann:
            seed(ann)
            wait_for_search(ann, 4)
            push_blob(ann, "tools/cli", STRAY)
        yield live


def _until(page: Page, check: str, seconds: float = 30) -> None:
    """Reload until ``check`` shows on the page (rounds come every 2 s)."""
    deadline = time.monotonic() + seconds
    while check not in page.locator("main").inner_text():
        assert time.monotonic() < deadline, f"never saw {check!r}"
        time.sleep(0.5)
        page.reload()


def test_an_administrator_sees_storage_images_and_the_last_rounds(
    page: Page, operated: LiveServer
) -> None:
    log_in(page, operated.url, "ann", "ann-pw")
    page.get_by_role("link", name="Operations").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Operations")
    storage = page.locator("table.storage tbody tr")
    expect(storage.first).to_contain_text("team/web")  # the largest: 83 KB in two images
    # 40,513 bytes of layers (v1 and v2 share three: counted once) and three manifests; the
    # repository page adds its images up to 83 KB
    expect(storage.first).to_contain_text("43.2 KB")
    expect(page.locator(".page-head .stats")).to_contain_text("4 repositories")
    biggest = page.locator("table.biggest tbody tr")
    expect(biggest.first).to_contain_text("team/web:v2")
    assert "secret/vault:v1" in page.locator("table.biggest").inner_text()  # ann reads all
    expect(page.get_by_text("Sync is off (extensions.sync).")).to_be_visible()

    _until(page, "12.3 KB freed")  # the stray blob, in one of the GC rounds
    gc = page.locator("article", has=page.get_by_role("heading", name="Last GC"))
    expect(gc).to_contain_text("freed")
    scrub = page.locator("article", has=page.get_by_role("heading", name="Last scrub"))
    _until(page, "every image passed")
    expect(scrub).to_contain_text("every image passed")
    expect(page.locator("table.runs")).to_contain_text("scrub")

    estimate = page.locator("article", has=page.get_by_role("heading", name="GC would free"))
    expect(estimate).to_contain_text("Not estimated yet.")
    estimate.get_by_role("button", name="Estimate now").click()
    _until(page, "in 4 repositories")
    expect(estimate).to_contain_text("0 B in 4 repositories")  # GC already took the stray


@pytest.mark.parametrize("who", ["guest", "bob"])
def test_nobody_else_sees_or_reaches_the_page(page: Page, operated: LiveServer, who: str) -> None:
    if who == "bob":
        log_in(page, operated.url, "bob", "bob-pw")
    page.goto(f"{operated.url}/home")
    expect(page.get_by_role("link", name="Operations")).to_have_count(0)
    answer = page.goto(f"{operated.url}/home/operations")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    assert "team/web" not in page.locator("main").inner_text()
    posted = page.request.post(
        f"{operated.url}/home/operations/estimate", form={"csrf": "anything"}
    )
    assert posted.status == 403


def test_an_estimate_needs_the_sessions_csrf_token(page: Page, operated: LiveServer) -> None:
    log_in(page, operated.url, "ann", "ann-pw")
    posted = page.request.post(f"{operated.url}/home/operations/estimate", form={"csrf": "x"})
    assert posted.status == 403
    assert "Form refused" in posted.text()
