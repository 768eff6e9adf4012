"""A repository the visitor may not read is invisible in every view, and answered exactly as
one that does not exist (ocireg.ext.ui.pages, through the one rule for what a caller may read)."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.ext.ui.conftest import log_in
from tests.liveserver import LiveServer

LISTINGS = (
    "/home",
    "/home/explore",
    "/home/explore?q=vault",
    "/home/explore?q=secret",
    "/home/explore?q=secret/vault:",
    "/home/explore?sort=updated",
    "/home/explore?q=Top%20secret",
)


def _vault_digest(registry: LiveServer) -> str:
    answer = httpx.head(
        f"{registry.url}/v2/secret/vault/manifests/v1",
        auth=("ann", "ann-pw"),
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    return answer.headers["Docker-Content-Digest"]


@pytest.mark.parametrize("who", ["guest", "bob"])
def test_an_unreadable_repository_is_invisible_everywhere(
    page: Page, registry: LiveServer, who: str
) -> None:
    if who == "bob":
        log_in(page, registry.url, "bob", "bob-pw")
    digest = _vault_digest(registry)
    for path in (*LISTINGS, f"/home/explore?q={digest}"):
        page.goto(f"{registry.url}{path}")
        shown = " ".join(page.locator("main .card, main table").all_inner_texts())
        assert "vault" not in shown, path
        after_headings = page.content().split('id="main"')[1].split("</h1>")[-1]
        assert "vault" not in after_headings, path
    page.goto(f"{registry.url}/home/explore?q=tools")  # a readable one shows, so search ran
    expect(page.locator(".results .card-title")).to_have_text(["tools/cli"])
    suggested = page.request.get(f"{registry.url}/home/suggest?q=vault").json()
    assert suggested == []
    for path, kind in (
        ("/home/repo/secret/vault", "repository"),
        ("/home/image/secret/vault/tag/v1", "image"),
    ):
        hidden = page.goto(f"{registry.url}{path}")
        hidden_text = page.locator("main").inner_text()
        absent = page.goto(f"{registry.url}{path.replace('vault', 'nothing')}")
        absent_text = page.locator("main").inner_text()
        assert hidden is not None and absent is not None
        assert hidden.status == absent.status == 404
        assert hidden_text.replace("vault", "X") == absent_text.replace("nothing", "X")
        assert f"There is no {kind} secret/vault" in hidden_text


def test_bob_cannot_star_what_he_cannot_read(page: Page, registry: LiveServer) -> None:
    log_in(page, registry.url, "bob", "bob-pw")
    page.goto(f"{registry.url}/home/repo/tools/cli")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    for repo in ("secret/vault", "secret/nothing"):
        answer = page.request.post(
            f"{registry.url}/home/prefs", form={"repo": repo, "action": "star", "csrf": csrf or ""}
        )
        assert answer.status == 404, repo
    starred = httpx.post(
        f"{registry.url}/v2/_zot/ext/search",
        json={"query": "{ StarredRepos { Results { Name } } }"},
        auth=("bob", "bob-pw"),
    )
    assert starred.json()["data"]["StarredRepos"]["Results"] == []


def test_ann_who_may_read_it_sees_it(page: Page, registry: LiveServer) -> None:
    log_in(page, registry.url, "ann", "ann-pw")
    page.goto(f"{registry.url}/home/explore?q=vault")
    expect(page.locator(".results .card-title")).to_have_text(["secret/vault"])
    page.goto(f"{registry.url}/home/image/secret/vault/tag/v1")
    expect(page.get_by_role("heading", level=1)).to_have_text("secret/vault:v1")
