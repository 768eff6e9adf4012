"""Logging in and out, CSRF refusal, stars and bookmarks, and the API-key lifecycle, in Chromium
(ocireg.ext.ui.accounts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.auth.slapd import ALICE, running_slapd
from tests.ext.ui.conftest import log_in, ui_config
from tests.liveserver import LiveServer, live_server


def _session_cookie(context: BrowserContext) -> dict[str, object]:
    (cookie,) = [c for c in context.cookies() if c["name"] == "ocireg_session"]
    return dict(cookie)


def test_login_and_logout_with_htpasswd(
    page: Page, context: BrowserContext, registry: LiveServer
) -> None:
    log_in(page, registry.url, "ann", "ann-pw")
    expect(page.locator(".who")).to_have_text("ann")
    expect(page.get_by_role("link", name="secret/vault").first).to_be_visible()  # ann may read it
    cookie = _session_cookie(context)
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Lax", False)
    assert cookie["path"] == "/"  # the API reads it too (OpenID sessions make API keys)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{registry.url}/home")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_role("link", name="secret/vault")).to_have_count(0)
    # the session is gone on the server too: its old cookie opens nothing
    stolen = httpx.get(f"{registry.url}/home", cookies={"ocireg_session": str(cookie["value"])})
    assert "secret/vault" not in stolen.text and 'class="who"' not in stolen.text


def test_wrong_password_is_refused_on_the_page(page: Page, registry: LiveServer) -> None:
    page.goto(f"{registry.url}/home/login")
    page.get_by_label("User name").fill("ann")
    page.get_by_label("Password").fill("not-ann-pw")
    with page.expect_response(f"{registry.url}/home/login") as answer:
        page.get_by_role("button", name="Log in").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    assert not [c for c in page.context.cookies() if c["name"] == "ocireg_session"]


def test_login_returns_to_the_page_asked_for_and_never_elsewhere(
    page: Page, registry: LiveServer
) -> None:
    page.goto(f"{registry.url}/home/apikeys")  # needs a user: to the login page and back
    page.wait_for_url(f"{registry.url}/home/login?next=%2Fhome%2Fapikeys")
    page.get_by_label("User name").fill("bob")
    page.get_by_label("Password").fill("bob-pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{registry.url}/home/apikeys")
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{registry.url}/home/login?next=https://evil.example/home")
    page.get_by_label("User name").fill("bob")
    page.get_by_label("Password").fill("bob-pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{registry.url}/home")


def test_forms_without_the_sessions_csrf_token_are_refused(
    page: Page, context: BrowserContext, registry: LiveServer
) -> None:
    log_in(page, registry.url, "bob", "bob-pw")
    cookies = {"ocireg_session": str(_session_cookie(context)["value"])}
    forged = [
        ("/home/prefs", {"repo": "team/web", "action": "star"}),
        ("/home/prefs", {"repo": "team/web", "action": "star", "csrf": "guess"}),
        ("/home/logout", {}),
        ("/home/apikeys", {"label": "forged", "expires": "never"}),
    ]
    for path, form in forged:
        answer = httpx.post(f"{registry.url}{path}", data=form, cookies=cookies)
        assert answer.status_code == 403, path
        assert "Form refused" in answer.text
    page.goto(f"{registry.url}/home/repo/team/web")
    expect(page.get_by_role("button", name="☆ Star")).to_be_visible()  # nothing starred
    page.goto(f"{registry.url}/home/apikeys")
    expect(page.get_by_text("You have no keys.")).to_be_visible()
    page.goto(f"{registry.url}/home")
    expect(page.locator(".who")).to_have_text("bob")  # and still logged in
    # the login form is protected too (no login CSRF): its token must match its cookie
    refused = httpx.post(
        f"{registry.url}/home/login", data={"username": "bob", "password": "bob-pw", "csrf": "x"}
    )
    assert refused.status_code == 403 and "ocireg_session" not in refused.cookies


def test_star_and_bookmark_show_on_the_repository_home_and_explore(
    page: Page, registry: LiveServer
) -> None:
    log_in(page, registry.url, "bob", "bob-pw")
    page.goto(f"{registry.url}/home/repo/tools/cli")
    page.get_by_role("button", name="☆ Star").click()
    expect(page.get_by_role("button", name="★ Starred")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".star-count")).to_have_text("1")
    page.get_by_role("button", name="Bookmark", exact=True).click()
    expect(page.get_by_role("button", name="Bookmarked")).to_be_visible()
    page.goto(f"{registry.url}/home")
    stars = page.locator("section", has=page.get_by_role("heading", name="Your stars"))
    expect(stars.locator(".card-title")).to_have_text(["tools/cli"])
    marks = page.locator("section", has=page.get_by_role("heading", name="Your bookmarks"))
    expect(marks.locator(".card-title")).to_have_text(["tools/cli"])
    page.goto(f"{registry.url}/home/explore?sort=stars")
    expect(page.locator(".results .card-title").first).to_have_text("tools/cli")
    page.get_by_label("Starred").check()
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".results .card-title")).to_have_text(["tools/cli"])
    page.goto(f"{registry.url}/home/repo/tools/cli")  # and back, for the other tests
    page.get_by_role("button", name="★ Starred").click()
    expect(page.locator(".star-count")).to_have_text("0")
    page.get_by_role("button", name="Bookmarked").click()
    expect(page.get_by_role("button", name="Bookmark", exact=True)).to_be_visible()


def test_api_key_lifecycle(page: Page, registry: LiveServer) -> None:
    log_in(page, registry.url, "ann", "ann-pw")
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_text("You have no keys.")).to_be_visible()
    page.get_by_label("Label").fill("ci runner")
    page.get_by_label("Expires").select_option(label="in 30 days")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("status")).to_contain_text("it is shown only once")
    key = page.locator("#new-key").inner_text()
    assert key.startswith("zak_")
    tags = httpx.get(f"{registry.url}/v2/secret/vault/tags/list", auth=("ann", key))
    assert tags.status_code == 200  # the key works as ann's password
    page.goto(f"{registry.url}/home/apikeys")
    expect(page.locator("#new-key")).to_have_count(0)  # shown once
    assert key not in page.content()
    row = page.locator("table.keys tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("ci runner")
    expect(row).to_contain_text("just now")
    page.get_by_role("button", name="Revoke ci runner").click()
    expect(page.get_by_text("You have no keys.")).to_be_visible()
    revoked = httpx.get(f"{registry.url}/v2/secret/vault/tags/list", auth=("ann", key))
    assert revoked.status_code == 401


def test_a_key_cannot_be_made_without_a_label(page: Page, registry: LiveServer) -> None:
    log_in(page, registry.url, "bob", "bob-pw")
    page.goto(f"{registry.url}/home/apikeys")
    page.get_by_label("Label").fill("   ")
    with page.expect_response(f"{registry.url}/home/apikeys") as answer:
        page.get_by_role("button", name="Create key").click()
    assert answer.value.status == 400
    expect(page.get_by_role("alert")).to_contain_text("Give the key a label")


@pytest.fixture(scope="module")
def members_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """No anonymous reader; LDAP next to htpasswd, and the directory's admins read all."""
    directory = tmp_path_factory.mktemp("ui-ldap")
    with running_slapd(directory / "slapd") as slapd:
        config = ui_config(directory, ldap=slapd.ldap_config())
        config["http"]["accessControl"] = {
            "repositories": {
                "**": {
                    "policies": [
                        {"users": ["ann"], "actions": ["read", "create"]},
                        {"groups": ["admins"], "actions": ["read"]},
                    ]
                }
            }
        }
        with live_server(directory, config) as live:
            with httpx.Client(base_url=live.url, auth=("ann", "ann-pw"), timeout=30) as ann:
                from tests.ext.ui.conftest import seed, wait_for_search

                seed(ann)
                wait_for_search(ann, 4)
            yield live


def test_ldap_login_where_guests_may_read_nothing(page: Page, members_only: LiveServer) -> None:
    page.goto(f"{members_only.url}/home/repo/team/web")
    page.wait_for_url(f"{members_only.url}/home/login?next=%2Fhome%2Frepo%2Fteam%2Fweb")
    expect(page.locator(".lead")).to_contain_text("registry or directory (LDAP)")
    page.get_by_label("User name").fill(ALICE.uid)
    page.get_by_label("Password").fill(ALICE.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{members_only.url}/home/repo/team/web")
    expect(page.locator(".who")).to_have_text("alice")
    page.goto(f"{members_only.url}/home")
    expect(page.get_by_role("link", name="secret/vault").first).to_be_visible()  # through her group
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{members_only.url}/home/login?next=%2Fhome")


def test_sessions_survive_in_the_meta_db_not_in_the_cookie(tmp_path: Path) -> None:
    """The cookie is a random id: the store holds only its hash (a copy of the DB opens
    nothing), and with sessionKeysFile a cookie not signed with hashKey is refused."""
    from ocireg.auth.sessionkeys import SessionKeys
    from ocireg.ext.ui.sessions import SessionStore

    clock = [1000.0]
    signed = SessionStore(tmp_path / "meta.db", SessionKeys(b"k" * 32, ()), lambda: clock[0])
    cookie, session = signed.create("ann", "htpasswd", ("devs",))
    assert signed.get(cookie) == session
    session_id, _, mac = cookie.rpartition(".")
    assert len(mac) == 64
    assert signed.get(session_id) is None and signed.get(f"{session_id}.0") is None
    assert session_id not in (tmp_path / "meta.db").read_bytes().decode("latin-1")
    clock[0] += 12 * 3600 + 1
    assert signed.get(cookie) is None  # expired
    signed.delete(cookie)


def test_session_keys_sign_the_cookie_and_secure_session_marks_it(tmp_path: Path) -> None:
    keys = tmp_path / "session-keys.json"
    keys.write_text('{"hashKey": "a-hash-key-of-some-length"}')
    config = ui_config(tmp_path, sessionKeysFile=str(keys), secureSession=True)
    with live_server(tmp_path, config) as live:
        form = httpx.get(f"{live.url}/home/login")
        token = form.cookies["ocireg_login_csrf"]
        login = {"username": "ann", "password": "ann-pw", "csrf": token, "next": "/home"}
        # the cookies are Secure: an HTTP client keeps them to itself, so they go by hand
        answer = httpx.post(
            f"{live.url}/home/login", data=login, cookies={"ocireg_login_csrf": token}
        )
        assert answer.status_code == 303
        set_cookie = [v for v in answer.headers.get_list("set-cookie") if "ocireg_session" in v]
        assert "Secure" in set_cookie[0] and "HttpOnly" in set_cookie[0]
        value = answer.cookies["ocireg_session"]
        session_id, _, mac = value.rpartition(".")
        assert session_id and len(mac) == 64
        home = httpx.get(f"{live.url}/home", cookies={"ocireg_session": value})
        assert '<span class="who" title="Logged in">ann</span>' in home.text
        forged = {"ocireg_session": f"{session_id}.{'0' * 64}"}
        assert 'class="who"' not in httpx.get(f"{live.url}/home", cookies=forged).text


def test_forms_that_are_not_small_url_encoded_forms_are_refused(
    page: Page, context: BrowserContext, registry: LiveServer
) -> None:
    log_in(page, registry.url, "bob", "bob-pw")
    cookies = {"ocireg_session": str(_session_cookie(context)["value"])}
    url = f"{registry.url}/home/prefs"
    huge = httpx.post(url, data={"repo": "x" * 20_000}, cookies=cookies)
    assert (huge.status_code, "Form refused" in huge.text) == (413, True)
    multipart = httpx.post(url, files={"repo": b"team/web"}, cookies=cookies)
    assert multipart.status_code == 415
    many = httpx.post(
        url,
        content="&".join(f"f{i}=1" for i in range(60)),
        cookies=cookies,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert many.status_code == 400
    not_utf8 = httpx.post(
        url,
        content=b"repo=\xff\xfe",
        cookies=cookies,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code == 400
