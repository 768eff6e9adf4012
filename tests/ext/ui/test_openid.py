"""OpenID login from the UI's login page in Chromium, against a provider on loopback: the
provider's button, the session it opens (named and grouped by claimMapping), an API key made
from that session, and logging out (ocireg.handlers.openid, ocireg.ext.ui.accounts)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.auth.oidcprovider import OpenIDProvider
from tests.ext.ui.conftest import ui_config
from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, put_manifest

CAROL = {"sub": "c-7", "preferred_username": "carol", "groups": ["vault-readers"]}


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIDProvider]:
    with OpenIDProvider(user=dict(CAROL)) as op:
        yield op


@pytest.fixture(scope="module")
def sso_registry(
    tmp_path_factory: pytest.TempPathFactory, provider: OpenIDProvider
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("ui-openid")
    oidc = provider.provider_config(
        name="Acme SSO", claimMapping={"username": "preferred_username"}
    )
    config = ui_config(directory, openid={"providers": {"oidc": oidc}})
    # carol's group may read secret/**, which guests and bob may not
    config["http"]["accessControl"]["repositories"]["secret/**"]["policies"].append(
        {"groups": ["vault-readers"], "actions": ["read"]}
    )
    with live_server(directory, config) as live:
        with httpx.Client(base_url=live.url, auth=("ann", "ann-pw"), timeout=30) as ann:
            put_manifest(ann, "secret/vault", "v1", image_manifest(ann, "secret/vault", [b"v"]))
        yield live


def test_openid_login_key_and_logout_in_the_browser(page: Page, sso_registry: LiveServer) -> None:
    base = sso_registry.url
    page.goto(f"{base}/home/apikeys")  # needs a user: to the login page, then back here
    page.wait_for_url(f"{base}/home/login?next=%2Fhome%2Fapikeys")
    expect(page.get_by_text("Or log in with")).to_be_visible()
    page.get_by_role("link", name="Acme SSO").click()  # to the provider and back
    page.wait_for_url(f"{base}/home/apikeys")
    expect(page.locator(".who")).to_have_text("carol")
    page.get_by_label("Label").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text()
    # the key acts as carol, with the group the provider gave her
    tags = httpx.get(f"{base}/v2/secret/vault/tags/list", auth=("carol", key), timeout=30)
    assert tags.status_code == 200 and tags.json()["tags"] == ["v1"]
    page.goto(f"{base}/home")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{base}/home")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "ocireg_session"]


def test_a_failed_openid_login_comes_back_to_the_login_page(
    page: Page, sso_registry: LiveServer, provider: OpenIDProvider
) -> None:
    provider.nonce = "another-logins-nonce"  # the ID token is not for this login
    try:
        page.goto(f"{sso_registry.url}/home/login")
        page.get_by_role("link", name="Acme SSO").click()
        page.wait_for_url("**/home/login?next=%2Fhome&failed=openid")
    finally:
        provider.nonce = None
    expect(page.get_by_role("alert")).to_have_text("The OpenID login did not succeed. Try again.")
    expect(page.locator(".who")).to_have_count(0)
    assert not [c for c in page.context.cookies() if c["name"] == "ocireg_session"]
