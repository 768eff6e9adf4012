"""OpenID login through zot's endpoints against a provider on loopback, over HTTP with a cookie
jar, as a browser does it (ocireg.auth.openid, ocireg.handlers.openid): the session it opens,
claimMapping's user and groups feeding accessControl, API keys made from the session, logout,
and every way a return can be wrong, each refused with a 401 and no session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jwcrypto import jwk

from tests.auth.oidcprovider import OpenIDProvider
from tests.auth.registries import EVERY_ACTION
from tests.liveserver import LiveServer, free_port, live_server
from tests.oci import image_manifest, put_manifest

UI_HEADER = {"X-ZOT-API-CLIENT": "zot-ui"}
ANN = {"sub": "u-1", "preferred_username": "ann", "email": "ann@example.com", "groups": ["devs"]}
ACCESS = {
    "repositories": {
        "team/**": {"policies": [{"groups": ["devs"], "actions": EVERY_ACTION}]},
        "ops/**": {"policies": [{"groups": ["ops"], "actions": EVERY_ACTION}]},
    }
}


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIDProvider]:
    with OpenIDProvider(user=dict(ANN)) as op:
        yield op


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, provider: OpenIDProvider
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("openid")
    oidc = provider.provider_config(
        name="Test SSO", claimMapping={"username": "preferred_username", "groups": "groups"}
    )
    # gitlab at an issuer where nothing listens: a provider that cannot be reached
    gitlab = {"clientid": "x", "issuer": f"http://127.0.0.1:{free_port()}"}
    # github as GitHub Enterprise at the same provider: OAuth2 and GitHub's API, no ID token
    github = {
        "clientid": provider.client_id,
        "clientsecret": provider.client_secret,
        "authurl": f"{provider.url}/login/oauth/authorize",
        "tokenurl": f"{provider.url}/login/oauth/access_token",
    }
    providers = {"oidc": oidc, "gitlab": gitlab, "github": github}
    extra = {
        "http": {
            "auth": {
                "openid": {
                    "providers": providers,
                    "callbackAllowOrigins": ["https://ui.example.com"],
                }
            },
            "accessControl": ACCESS,
        }
    }
    with live_server(directory, extra) as live:
        yield live


@pytest.fixture(autouse=True)
def well_behaved(provider: OpenIDProvider) -> Iterator[None]:
    """Each test starts with the provider behaving, whatever the last one switched on."""
    yield
    provider.user = dict(ANN)
    provider.nonce = provider.issuer = provider.audience = provider.signing_key = None
    provider.tamper = False
    provider.code_lifetime, provider.token_lifetime = 60.0, 300.0


@pytest.fixture
def browser(registry: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, timeout=30) as client:
        yield client


def to_provider_and_back(browser: httpx.Client, provider: str = "oidc", **query: str) -> str:
    """Start a login, let the provider log the user in; the URL it sends the browser back to."""
    start = browser.get("/zot/auth/login", params={"provider": provider, **query})
    assert start.status_code == 302, start.text
    at_provider = browser.get(start.headers["location"])  # another host: its own request
    assert at_provider.status_code == 302, at_provider.text
    back: str = at_provider.headers["location"]
    return back


def assert_no_session(browser: httpx.Client) -> None:
    assert "ocireg_session" not in browser.cookies
    assert browser.get("/zot/auth/apikey", headers=UI_HEADER).status_code == 401


def refused(answer: httpx.Response, why: str) -> None:
    assert answer.status_code == 401, answer.text
    assert "WWW-Authenticate" not in answer.headers  # a browser must not pop its dialog up
    (error,) = answer.json()["errors"]
    assert error["code"] == "UNAUTHORIZED" and why in error["detail"]["reason"]


def test_login_opens_a_session_named_by_claim_mapping(
    browser: httpx.Client, provider: OpenIDProvider
) -> None:
    back = to_provider_and_back(browser)
    assert back.startswith(f"{browser.base_url}/zot/auth/callback/oidc?")
    answer = browser.get(back)
    assert answer.status_code == 200
    assert answer.json() == {"user": "ann", "groups": ["devs"]}
    cookie = next(c for c in browser.cookies.jar if c.name == "ocireg_session")
    assert cookie.path == "/" and cookie.has_nonstandard_attr("HttpOnly")
    # the session is the API's for requests marked as a UI's, and only those
    assert browser.get("/zot/auth/apikey", headers=UI_HEADER).json() == {"apiKeys": []}
    assert browser.get("/zot/auth/apikey").status_code == 401


def test_the_authorization_request_carries_pkce_state_and_nonce(
    browser: httpx.Client, provider: OpenIDProvider
) -> None:
    start = browser.get("/zot/auth/login", params={"provider": "oidc"})
    query = httpx.URL(start.headers["location"]).params
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    assert query["scope"].split()[0] == "openid" and query["client_id"] == provider.client_id
    assert query["redirect_uri"] == f"{browser.base_url}/zot/auth/callback/oidc"


def test_groups_from_the_claims_decide_access_and_travel_with_api_keys(
    browser: httpx.Client, registry: LiveServer
) -> None:
    browser.get(to_provider_and_back(browser))
    made = browser.post("/zot/auth/apikey", json={"label": "ci"}, headers=UI_HEADER)
    assert made.status_code == 201, made.text
    key = made.json()["apiKey"]
    with httpx.Client(base_url=registry.url, auth=("ann", key), timeout=30) as client:
        manifest = image_manifest(client, "team/app", [b"layer"])
        assert put_manifest(client, "team/app", "v1", manifest).status_code == 201
        assert client.get("/v2/team/app/manifests/v1").status_code == 200
        # not in the ops group: denied
        assert client.get("/v2/ops/tool/tags/list").status_code == 403
    assert [
        k["label"] for k in browser.get("/zot/auth/apikey", headers=UI_HEADER).json()["apiKeys"]
    ] == ["ci"]


def test_an_api_key_cannot_make_keys_but_the_session_can(
    browser: httpx.Client, registry: LiveServer
) -> None:
    browser.get(to_provider_and_back(browser))
    key = browser.post("/zot/auth/apikey", json={"label": "a"}, headers=UI_HEADER).json()["apiKey"]
    with_key = httpx.post(
        f"{registry.url}/zot/auth/apikey", json={"label": "b"}, auth=("ann", key), timeout=30
    )
    assert with_key.status_code == 403


def test_logout_closes_the_session(browser: httpx.Client) -> None:
    browser.get(to_provider_and_back(browser))
    stolen = browser.cookies["ocireg_session"]
    assert browser.post("/zot/auth/logout", headers=UI_HEADER).status_code == 200
    assert_no_session(browser)
    replayed = httpx.get(
        f"{browser.base_url}/zot/auth/apikey",
        headers=UI_HEADER,
        cookies={"ocireg_session": stolen},
    )
    assert replayed.status_code == 401  # gone on the server, not only in the browser


def test_callback_ui_sends_the_browser_back(browser: httpx.Client) -> None:
    back = to_provider_and_back(browser, callback_ui=f"{browser.base_url}/v2/_catalog")
    answer = browser.get(back)
    assert answer.status_code == 302 and answer.headers["location"].endswith("/v2/_catalog")


def test_callback_ui_may_be_an_allowed_origin(browser: httpx.Client) -> None:
    back = to_provider_and_back(browser, callback_ui="https://ui.example.com/home")
    answer = browser.get(back)
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://ui.example.com/home"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/home",
        "//evil.example/x",
        "javascript:x",
        "/\t/evil.example",
        "/\\evil.example",
    ],
)
def test_callback_ui_elsewhere_is_refused(browser: httpx.Client, target: str) -> None:
    answer = browser.get("/zot/auth/login", params={"provider": "oidc", "callback_ui": target})
    assert answer.status_code == 400 and "callbackAllowOrigins" in answer.text


def test_an_unknown_provider_is_refused(browser: httpx.Client) -> None:
    answer = browser.get("/zot/auth/login", params={"provider": "google"})
    assert answer.status_code == 400 and "github, gitlab, oidc" in answer.text


def test_a_provider_that_cannot_be_reached_is_a_502(browser: httpx.Client) -> None:
    answer = browser.get("/zot/auth/login", params={"provider": "gitlab"})
    assert answer.status_code == 502
    assert "cannot be used now" in answer.json()["errors"][0]["detail"]["reason"]


# -- every return that is wrong: a 401 with its reason, and no session --------------------
def test_wrong_state(browser: httpx.Client) -> None:
    back = httpx.URL(to_provider_and_back(browser))
    forged = back.copy_set_param("state", "not-the-state-we-sent")
    refused(browser.get(forged), "the state is not this login's")
    assert_no_session(browser)


def test_a_return_to_another_browser_is_refused(
    browser: httpx.Client, registry: LiveServer
) -> None:
    back = to_provider_and_back(browser)  # the victim's code, replayed by a stranger
    refused(httpx.get(back), "no login was started from this browser")


def test_wrong_nonce(browser: httpx.Client, provider: OpenIDProvider) -> None:
    provider.nonce = "a-nonce-from-another-login"
    refused(browser.get(to_provider_and_back(browser)), "nonce is not this login's")
    assert_no_session(browser)


def test_expired_code(browser: httpx.Client, provider: OpenIDProvider) -> None:
    provider.code_lifetime = -1.0
    refused(browser.get(to_provider_and_back(browser)), "refused the authorization code")
    assert_no_session(browser)


def test_a_code_is_good_once(browser: httpx.Client) -> None:
    back = to_provider_and_back(browser)
    assert browser.get(back).status_code == 200
    browser.cookies.clear()
    refused(browser.get(back), "no login was started")


def test_tampered_id_token(browser: httpx.Client, provider: OpenIDProvider) -> None:
    provider.tamper = True
    refused(browser.get(to_provider_and_back(browser)), "the ID token is not valid")
    assert_no_session(browser)


def test_id_token_signed_with_an_unpublished_key(
    browser: httpx.Client, provider: OpenIDProvider
) -> None:
    provider.signing_key = jwk.JWK.generate(kty="RSA", size=2048, kid="test-key-1")
    refused(browser.get(to_provider_and_back(browser)), "the ID token is not valid")
    assert_no_session(browser)


def test_unknown_issuer(browser: httpx.Client, provider: OpenIDProvider) -> None:
    provider.issuer = "https://issuer.elsewhere.example"
    refused(browser.get(to_provider_and_back(browser)), "not for this registry")
    assert_no_session(browser)


def test_id_token_for_another_client(browser: httpx.Client, provider: OpenIDProvider) -> None:
    provider.audience = "some-other-client"
    refused(browser.get(to_provider_and_back(browser)), "not for this registry")
    assert_no_session(browser)


def test_expired_id_token(browser: httpx.Client, provider: OpenIDProvider) -> None:
    provider.token_lifetime = -300.0
    refused(browser.get(to_provider_and_back(browser)), "expired")
    assert_no_session(browser)


def test_the_provider_saying_no(browser: httpx.Client) -> None:
    start = browser.get("/zot/auth/login", params={"provider": "oidc"})
    state = httpx.URL(start.headers["location"]).params["state"]
    answer = browser.get(
        "/zot/auth/callback/oidc", params={"error": "access_denied", "state": state}
    )
    refused(answer, "access_denied")
    assert_no_session(browser)


def test_no_user_name_claim(browser: httpx.Client, provider: OpenIDProvider) -> None:
    provider.user = {"sub": "u-2", "email": "x@example.com"}  # no preferred_username anywhere
    refused(browser.get(to_provider_and_back(browser)), "no user name in the claim")
    assert_no_session(browser)


def test_groups_only_in_userinfo_are_read_from_there(
    browser: httpx.Client, provider: OpenIDProvider
) -> None:
    provider.id_token_claims = {"groups": None}  # the ID token lacks them; userinfo has them
    try:
        answer = browser.get(to_provider_and_back(browser))
    finally:
        provider.id_token_claims = {}
    assert answer.json() == {"user": "ann", "groups": ["devs"]}


def test_openid_off_means_no_endpoints(tmp_path: Path) -> None:
    with live_server(tmp_path) as live:
        answer = httpx.get(f"{live.url}/zot/auth/login", params={"provider": "oidc"})
        assert answer.status_code == 404
        assert httpx.post(f"{live.url}/zot/auth/logout").status_code == 200


def test_a_key_id_it_does_not_know_makes_it_fetch_the_keys_again(
    browser: httpx.Client, provider: OpenIDProvider
) -> None:
    provider.signing_key = jwk.JWK.generate(kty="RSA", size=2048, kid="rotated-away")
    back = to_provider_and_back(browser)
    provider.requests.clear()
    refused(browser.get(back), "signed with a key its issuer does not publish")
    assert "/jwks" in provider.requests  # looked again before refusing
    assert_no_session(browser)


def test_github_login_names_the_primary_email_and_the_organisations(
    browser: httpx.Client,
) -> None:
    back = to_provider_and_back(browser, provider="github")
    assert "/zot/auth/callback/github?" in back
    answer = browser.get(back)
    assert answer.json() == {"user": "ann@example.com", "groups": ["devs"]}
    assert browser.get("/zot/auth/apikey", headers=UI_HEADER).status_code == 200


def test_github_wrong_state(browser: httpx.Client) -> None:
    back = httpx.URL(to_provider_and_back(browser, provider="github"))
    refused(browser.get(back.copy_set_param("state", "forged")), "the state is not this login's")
    assert_no_session(browser)
