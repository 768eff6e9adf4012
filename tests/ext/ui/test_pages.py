"""A flow per page, in Chromium, asserting what a person sees (ocireg.ext.ui.pages)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.ext.ui.conftest import ui_config
from tests.liveserver import LiveServer, live_server


def _json_section(page: Page, heading: str) -> Locator:
    return page.locator("section", has=page.get_by_role("heading", name=heading)).locator("pre")


def test_home_shows_recent_and_popular_repositories_to_a_guest(
    page: Page, registry: LiveServer
) -> None:
    page.goto(f"{registry.url}/home")
    expect(page).to_have_title("Home · ocireg")
    recent = page.locator("section", has=page.get_by_role("heading", name="Recently updated"))
    for name in ("team/web", "team/multi", "tools/cli"):
        expect(recent.get_by_role("link", name=name)).to_be_visible()
    expect(recent.get_by_text("The team's web server")).to_be_visible()
    expect(page.get_by_role("heading", name="Most downloaded")).to_be_visible()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_role("heading", name="Your stars")).to_have_count(0)


def test_suggestions_appear_while_typing_and_the_keyboard_picks_one(
    page: Page, registry: LiveServer
) -> None:
    page.goto(f"{registry.url}/home")
    box = page.get_by_role("searchbox", name="Search repositories")
    box.press_sequentially("mul", delay=30)
    suggestion = page.get_by_role("option", name="team/multi")
    expect(suggestion).to_be_visible()
    box.press("ArrowDown")
    box.press("Enter")
    page.wait_for_url(f"{registry.url}/home/repo/team/multi")
    expect(page.get_by_role("heading", level=1)).to_have_text("team/multi")


def test_explore_filters_by_architecture_sorts_and_pages(page: Page, registry: LiveServer) -> None:
    page.goto(f"{registry.url}/home/explore")
    results = page.locator(".results .card-title")
    expect(results).to_have_text(["team/multi", "team/web", "tools/cli"])
    expect(page.get_by_text("3 repositories · page 1 of 1")).to_be_visible()
    page.get_by_label("arm64").check()
    page.get_by_role("button", name="Apply").click()
    expect(results).to_have_text(["team/multi"])
    assert "arch=arm64" in page.url
    page.get_by_label("arm64").uncheck()
    page.get_by_label("Sort by").select_option(label="Name Z to A")
    page.get_by_role("button", name="Apply").click()
    expect(results).to_have_text(["tools/cli", "team/web", "team/multi"])
    page.goto(f"{registry.url}/home/explore?page=2")
    expect(page.get_by_text("No repository matches.")).to_be_visible()
    page.get_by_role("link", name="← Previous").click()
    expect(results).to_have_count(3)


def test_explore_searches_by_name_and_by_tag(page: Page, registry: LiveServer) -> None:
    page.goto(f"{registry.url}/home")
    page.get_by_role("searchbox", name="Search", exact=True).fill("cli")
    page.get_by_role("searchbox", name="Search", exact=True).press("Enter")
    expect(page.get_by_role("heading", name="Results for “cli”")).to_be_visible()
    expect(page.locator(".results .card-title")).to_have_text(["tools/cli"])
    page.goto(f"{registry.url}/home/explore?q=team/web:v")
    expect(page.get_by_role("link", name="team/web:v1")).to_be_visible()
    expect(page.get_by_role("link", name="team/web:v2")).to_be_visible()


def test_bad_explore_input_is_a_400_page(page: Page, registry: LiveServer) -> None:
    for query in ("sort=bogus", "page=0", "page=x"):
        answer = page.goto(f"{registry.url}/home/explore?{query}")
        assert answer is not None and answer.status == 400, query
        expect(page.get_by_role("heading", name="Bad request")).to_be_visible()


def test_repository_page_shows_annotations_tags_and_pull_commands(
    page: Page, registry: LiveServer
) -> None:
    page.goto(f"{registry.url}/home/repo/team/web")
    expect(page.get_by_role("heading", level=1)).to_have_text("team/web")
    expect(page.locator(".lead")).to_have_text("The team's web server")
    facts = page.locator(".facts")
    expect(facts).to_contain_text("Acme Widgets")
    expect(facts).to_contain_text("Apache-2.0")
    expect(facts.get_by_role("link", name="https://example.com/web")).to_be_visible()
    rows = page.locator("table.tags tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("v2")  # newest first
    expect(rows.nth(1)).to_contain_text("v1")
    for column in ("linux/amd64", "ann", "sha256:", "41.3 KB"):
        expect(rows.nth(1)).to_contain_text(column)
    expect(rows.nth(1)).to_contain_text(re.compile(r"just now|minutes? ago"))
    host = registry.host
    commands = page.locator(".side .pull-command")
    expect(commands).to_have_text(
        [
            f"docker pull {host}/team/web:v2",
            f"podman pull {host}/team/web:v2",
            f"skopeo copy docker://{host}/team/web:v2 oci:web:v2",
            f"oras pull {host}/team/web:v2",
        ]
    )
    # not logged in: no star or bookmark buttons
    expect(page.get_by_role("button", name=re.compile("Star"))).to_have_count(0)


def test_copy_buttons_copy_the_command(browser: Browser, registry: LiveServer) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(f"{registry.url}/home/repo/tools/cli")
        page.get_by_role("button", name="Copy").first.click()
        expect(page.get_by_role("button", name="Copied")).to_be_visible()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == f"docker pull {registry.host}/tools/cli:1.0"
    finally:
        context.close()


def test_image_page_shows_layers_history_bar_json_and_referrers(
    page: Page, registry: LiveServer
) -> None:
    page.goto(f"{registry.url}/home/repo/team/web")
    page.get_by_role("link", name="v1", exact=True).click()
    page.wait_for_url(f"{registry.url}/home/image/team/web/tag/v1")
    expect(page.get_by_role("heading", level=1)).to_have_text("team/web:v1")
    rows = page.locator("table.layers tbody tr")
    expect(rows).to_have_count(4)  # three layers and an empty one (ENV)
    expect(rows.nth(0)).to_contain_text("ADD rootfs.tar /")
    expect(rows.nth(0)).to_contain_text("30.0 KB")
    expect(rows.nth(1)).to_contain_text("ENV PATH=/usr/bin")
    expect(rows.nth(2)).to_contain_text("RUN apk add nginx")
    expect(rows.nth(2)).to_contain_text("9.0 KB")
    bar = page.get_by_role("img", name="Layer sizes").locator("rect")
    expect(bar).to_have_count(3)
    widths = [float(bar.nth(i).get_attribute("width") or 0) for i in range(3)]
    assert widths == [750.0, 225.0, 25.0]  # 30 000, 9 000 and 1 000 bytes of 40 000
    expect(_json_section(page, "Manifest")).to_contain_text('"schemaVersion": 2')
    expect(_json_section(page, "Config")).to_contain_text('"created_by": "RUN apk add nginx"')
    referrers = page.locator("section", has=page.get_by_role("heading", name="Referrers"))
    expect(referrers).to_contain_text("application/spdx+json")
    expect(referrers).to_contain_text("org.example.sbom.tool syft")
    digest = page.locator(".digest code").inner_text()
    page.goto(f"{registry.url}/home/image/team/web/digest/{digest}")  # the same, by digest
    expect(page.get_by_role("heading", level=1)).to_have_text(f"team/web@{digest}")
    expect(page.locator("table.layers tbody tr")).to_have_count(4)


def test_image_page_of_an_index_lets_one_pick_the_platform(
    page: Page, registry: LiveServer
) -> None:
    page.goto(f"{registry.url}/home/image/team/multi/tag/latest")
    platforms = page.get_by_role("navigation", name="Platforms")
    expect(platforms.get_by_role("link")).to_have_text(["linux/amd64", "linux/arm64"])
    expect(page.get_by_role("heading", name=re.compile("Layers"))).to_contain_text("linux/amd64")
    platforms.get_by_role("link", name="linux/arm64").click()
    expect(page.get_by_role("heading", name=re.compile("Layers"))).to_contain_text("linux/arm64")
    expect(_json_section(page, "Config")).to_contain_text('"architecture": "arm64"')
    answer = page.goto(f"{registry.url}/home/image/team/multi/tag/latest?platform=7")
    assert answer is not None and answer.status == 400


def test_browsing_works_with_javascript_off(browser: Browser, registry: LiveServer) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{registry.url}/home")
        page.get_by_role("searchbox", name="Search", exact=True).fill("web")
        page.get_by_role("button", name="Search").last.click()
        page.get_by_role("link", name="team/web").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("team/web")
        expect(page.get_by_role("button", name="Copy")).to_have_count(0)  # nothing to run them
        expect(page.locator(".side .pull-command").first).to_be_visible()
        page.get_by_role("link", name="v2", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("team/web:v2")
    finally:
        context.close()


def test_unknown_pages_are_404_pages_and_headers_forbid_framing(
    page: Page, registry: LiveServer
) -> None:
    answer = page.goto(f"{registry.url}/home/no/such/page")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    headers = answer.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_a_search_that_refuses_is_a_503_page_that_says_why(
    page: Page, tmp_path_factory: pytest.TempPathFactory
) -> None:
    directory = tmp_path_factory.mktemp("ui-limits")
    config = ui_config(directory)
    config["extensions"]["search"] = {"limits": {"maxAliases": 0}}  # the home page uses two
    with live_server(directory, config) as live:
        answer = page.goto(f"{live.url}/home")
        assert answer is not None and answer.status == 503
        expect(page.get_by_role("heading", name="Search did not answer")).to_be_visible()
        expect(page.locator(".lead")).to_contain_text("extensions.search.limits.maxAliases")
        answer = page.goto(f"{live.url}/home/explore")  # one query, no alias: answered
        assert answer is not None and answer.status == 200
