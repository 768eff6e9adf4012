"""Authentication in front of everything: zot's web UI gets its 401s without a challenge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.registries import token_registry, write_htpasswd
from tests.auth.tokenserver import TokenServer
from tests.liveserver import LiveServer, live_server
from tests.oci import error_codes

UI = {"X-ZOT-API-CLIENT": "zot-ui"}
USERS = {"ann": "ann-pw"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("ui-client")
    extra = {
        "http": {
            "realm": "ui-realm",
            "auth": {"htpasswd": {"path": str(write_htpasswd(directory / "htpasswd", USERS))}},
            "accessControl": {"repositories": {"**": {"defaultPolicy": ["read"]}}},
        },
        "extensions": {"search": {}, "metrics": {}},
    }
    with live_server(directory, extra) as live:
        yield live


def _unchallenged(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert error_codes(response) == ["UNAUTHORIZED"]
    assert "www-authenticate" not in response.headers


def test_a_ui_request_gets_401_without_a_challenge_wherever_401_comes_from(
    guarded: LiveServer,
) -> None:
    url = guarded.url
    requests = {
        "login (GET /v2/)": lambda h: httpx.get(f"{url}/v2/", headers=h),
        "wrong password": lambda h: httpx.get(f"{url}/v2/", headers=h, auth=("ann", "bad")),
        "repository rule": lambda h: httpx.get(f"{url}/v2/some/repo/tags/list", headers=h),
        "extension route (/metrics)": lambda h: httpx.get(f"{url}/metrics", headers=h),
        "extension operation (userprefs)": lambda h: httpx.put(
            f"{url}/v2/_zot/ext/userprefs",
            params={"action": "toggleStar", "repo": "some/repo"},
            headers=h,
        ),
    }
    for where, send in requests.items():
        _unchallenged(send(UI))
        plain = send({})
        assert plain.status_code == 401, where
        assert plain.headers["www-authenticate"] == 'Basic realm="ui-realm"', where
        # zot compares the value exactly: another client still gets its challenge
        assert "www-authenticate" in send({"X-ZOT-API-CLIENT": "zli"}).headers, where
    ok = httpx.get(f"{url}/v2/", headers=UI, auth=("ann", "ann-pw"))
    assert ok.status_code == 200


def test_token_mode_has_no_challenge_for_the_ui_either(tmp_path: Path) -> None:
    tokens = TokenServer(tmp_path / "tokens")
    with token_registry(tmp_path / "registry", tokens) as live:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            _unchallenged(httpx.get(f"{live.url}/v2/any/tags/list", headers={**UI, **headers}))
            plain = httpx.get(f"{live.url}/v2/any/tags/list", headers=headers)
            assert plain.headers["www-authenticate"].startswith("Bearer realm=")
