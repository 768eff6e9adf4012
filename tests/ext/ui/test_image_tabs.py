"""The image page's tabs in Chromium (ocireg.ext.ui.imagepage): vulnerabilities from CVE
scanning, and base images and dependents, each only of what the visitor may read."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.ext.ui.conftest import log_in
from tests.liveserver import LiveServer

API = "/home/image/team/api/tag/1.0"


def _cve_ids(page: Page) -> list[str]:
    return page.locator("table.cves .cve-id").all_inner_texts()


def test_vulnerabilities_show_counts_a_chart_and_a_filterable_list(
    page: Page, scanning: LiveServer
) -> None:
    page.goto(f"{scanning.url}{API}")
    page.get_by_role("link", name="Vulnerabilities").click()
    expect(page.get_by_role("heading", name="Vulnerabilities")).to_contain_text(
        "8 known, worst critical"
    )
    expect(page.get_by_role("img", name="Severity chart")).to_be_visible()
    counts = page.get_by_role("list", name="Counts by severity")
    expect(counts.get_by_role("listitem")).to_have_text(
        ["1 critical", "0 high", "2 medium", "0 low", "5 unknown"]
    )
    assert len(_cve_ids(page)) == 8
    assert _cve_ids(page)[0] == "CVE-2021-44228"  # the most severe first
    log4j = page.locator("table.cves tr", has_text="CVE-2021-44228")
    expect(log4j).to_contain_text("org.apache.logging.log4j:log4j-core")
    expect(log4j).to_contain_text("2.14.1")

    page.get_by_label("Severity", exact=True).select_option(label="Medium")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("2 vulnerabilities match")).to_be_visible()
    assert sorted(_cve_ids(page)) == ["CVE-2020-28498", "CVE-2023-32681"]

    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Find").fill("requests")
    page.get_by_role("button", name="Filter").click()
    assert _cve_ids(page) == ["CVE-2023-32681"]
    requests = page.locator("table.cves tr", has_text="CVE-2023-32681")
    expect(requests).to_contain_text("2.31.0")  # fixed in

    page.get_by_role("link", name="1 critical").click()
    assert _cve_ids(page) == ["CVE-2021-44228"]


def test_an_image_without_a_scan_result_says_so(page: Page, scanning: LiveServer) -> None:
    page.goto(f"{scanning.url}/home/image/team/web/tag/v1?tab=vulnerabilities")
    expect(page.get_by_role("status")).to_contain_text("Not scanned.")
    expect(page.get_by_role("img", name="Severity chart")).to_have_count(0)
    expect(page.locator("table.cves")).to_have_count(0)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("severity=SEVERE", "severity must be one of"),
        ("page=0", "page must be between"),
        ("q=" + "x" * 129, "longer than 128"),
    ],
)
def test_a_filter_no_tab_can_use_is_refused(scanning: LiveServer, query: str, reason: str) -> None:
    answer = httpx.get(f"{scanning.url}{API}?tab=vulnerabilities&{query}")
    assert answer.status_code == 400
    assert reason in answer.text


def test_without_scanning_there_is_no_vulnerabilities_tab(page: Page, registry: LiveServer) -> None:
    page.goto(f"{registry.url}/home/image/team/web/tag/v2")
    tabs = page.get_by_role("navigation", name="Image")
    expect(tabs.get_by_role("link")).to_have_text(["Overview", "Base images and dependents"])
    answer = page.request.get(f"{registry.url}/home/image/team/web/tag/v2?tab=vulnerabilities")
    assert answer.status == 404
    page.goto(f"{registry.url}/home/image/team/web/tag/v2?tab=related")
    expect(page.get_by_role("heading", name="Base images")).to_be_visible()


def _related(page: Page, heading: str) -> list[str]:
    """The images listed under ``heading``, once it shows (after a click, the page it
    navigates to may not have loaded yet: ``all_inner_texts`` does not wait)."""
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    section = page.locator("section", has=page.get_by_role("heading", name=heading))
    return section.locator("table.related tbody td:first-child a").all_inner_texts()


@pytest.mark.parametrize("who", ["guest", "bob"])
def test_base_images_and_dependents_hide_what_the_visitor_may_not_read(
    page: Page, scanning: LiveServer, who: str
) -> None:
    if who == "bob":
        log_in(page, scanning.url, "bob", "bob-pw")
    page.goto(f"{scanning.url}/home/image/team/web/tag/v2")
    page.get_by_role("link", name="Base images and dependents").click()
    assert _related(page, "Base images") == ["team/web:v1"]
    expect(page.get_by_text("No image you may read is built on this one.")).to_be_visible()
    page.get_by_role("link", name="team/web:v1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("team/web:v1")
    page.goto(f"{scanning.url}/home/image/team/web/tag/v1?tab=related")
    assert _related(page, "Dependents") == ["team/web:v2"]
    assert "vault" not in page.locator("main").inner_text()


def test_whoever_may_read_a_dependent_sees_it(page: Page, scanning: LiveServer) -> None:
    log_in(page, scanning.url, "ann", "ann-pw")
    page.goto(f"{scanning.url}/home/image/team/web/tag/v1?tab=related")
    assert sorted(_related(page, "Dependents")) == ["secret/vault:derived", "team/web:v2"]
    page.goto(f"{scanning.url}/home/image/secret/vault/tag/derived?tab=related")
    assert _related(page, "Base images") == ["team/web:v1"]


def test_pull_commands_name_the_external_host(page: Page, scanning: LiveServer) -> None:
    page.goto(f"{scanning.url}/home/repo/team/api")
    commands = page.locator(".side .pull-command")
    expect(commands.first).to_have_text("docker pull registry.example.com/team/api:1.0")
