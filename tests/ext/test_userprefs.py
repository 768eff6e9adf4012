"""userprefs over HTTP: zot's statuses for anonymous callers and empty names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.auth.registries import write_htpasswd
from tests.liveserver import LiveServer, live_server
from tests.oci import error_codes, image_manifest, put_manifest

PREFS = "/v2/_zot/ext/userprefs"
USERS = {"ann": "ann-pw"}


def _registry(
    factory: pytest.TempPathFactory, repositories: dict[str, Any]
) -> Iterator[LiveServer]:
    directory = factory.mktemp("userprefs")
    extra = {
        "http": {
            "realm": "prefs",
            "auth": {"htpasswd": {"path": str(write_htpasswd(directory / "htpasswd", USERS))}},
            "accessControl": {"repositories": repositories},
        },
        "extensions": {"search": {}},
    }
    with live_server(directory, extra) as live:
        with httpx.Client(base_url=live.url, auth=("ann", "ann-pw")) as ann:
            put_manifest(ann, "team/app", "v1", image_manifest(ann, "team/app"))
        yield live


@pytest.fixture(scope="module")
def open_to_guests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Anonymous callers may read; ann may do everything."""
    rules = {"**": {"anonymousPolicy": ["read"], "policies": [
        {"users": ["ann"], "actions": ["read", "create"]}]}}  # fmt: skip
    yield from _registry(tmp_path_factory, rules)


@pytest.fixture(scope="module")
def members_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    rules = {"**": {"policies": [{"users": ["ann"], "actions": ["read", "create"]}]}}
    yield from _registry(tmp_path_factory, rules)


def _toggle(live: LiveServer, repo: str, **options: Any) -> httpx.Response:
    params = {"action": "toggleStar", "repo": repo}
    return httpx.put(f"{live.url}{PREFS}", params=params, **options)


def test_anonymous_gets_403_where_guests_are_admitted(open_to_guests: LiveServer) -> None:
    for repo in ("team/app", "no/such", ""):
        refused = _toggle(open_to_guests, repo)
        assert (refused.status_code, error_codes(refused)) == (403, ["DENIED"]), repo


def test_empty_repo_is_404_as_in_zot(open_to_guests: LiveServer) -> None:
    empty = _toggle(open_to_guests, "", auth=("ann", "ann-pw"))
    assert (empty.status_code, error_codes(empty)) == (404, ["NAME_UNKNOWN"])
    unknown = _toggle(open_to_guests, "no/such", auth=("ann", "ann-pw"))
    assert (unknown.status_code, error_codes(unknown)) == (404, ["NAME_UNKNOWN"])
    assert _toggle(open_to_guests, "team/app", auth=("ann", "ann-pw")).status_code == 200
    missing = httpx.put(f"{open_to_guests.url}{PREFS}", params={"action": "toggleStar"})
    assert missing.status_code == 400


def test_anonymous_is_challenged_where_nobody_anonymous_is_admitted(
    members_only: LiveServer,
) -> None:
    challenged = _toggle(members_only, "team/app")
    assert (challenged.status_code, error_codes(challenged)) == (401, ["UNAUTHORIZED"])
    assert challenged.headers["www-authenticate"] == 'Basic realm="prefs"'
    from_ui = _toggle(members_only, "team/app", headers={"X-ZOT-API-CLIENT": "zot-ui"})
    assert from_ui.status_code == 401 and "www-authenticate" not in from_ui.headers
    assert _toggle(members_only, "team/app", auth=("ann", "ann-pw")).status_code == 200


def test_without_authentication_nobody_has_a_user(ext_client: httpx.Client) -> None:
    refused = ext_client.put(PREFS, params={"action": "toggleStar", "repo": ""})
    assert (refused.status_code, error_codes(refused)) == (403, ["DENIED"])
