"""Browser sessions and API keys on two instances that share one bucket and one PostgreSQL meta
DB: made through one, honoured (and ended) through the other."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.auth.registries import EVERY_ACTION, write_htpasswd
from tests.postgres import Postgres, postgres
from tests.s3server import S3Endpoint, s3_endpoint
from tests.sharedinstances import two_instances

__all__ = ["postgres", "s3_endpoint"]  # session fixtures, used here by name

KEYS = "/zot/auth/apikey"
UI_HEADERS = {"X-ZOT-API-CLIENT": "zot-ui"}  # the API honours a session only from the UI
TIMEOUT = 60  # seconds: the UI's pages ask search, slow on a loaded machine


def _config(directory: Path) -> dict[str, Any]:
    htpasswd = write_htpasswd(directory / "htpasswd", {"ann": "ann-pw"})
    return {
        "http": {
            "realm": "shared",
            "auth": {"htpasswd": {"path": str(htpasswd)}, "apikey": True},
            "accessControl": {
                "repositories": {"**": {"policies": [{"users": ["ann"], "actions": EVERY_ACTION}]}}
            },
        },
        "extensions": {"search": {}, "ui": {}},
    }


def _log_in(base: str, user: str, password: str) -> str:
    """The session cookie a login through the UI's form on ``base`` sets."""
    with httpx.Client(base_url=base, timeout=TIMEOUT) as browser:
        browser.get("/home/login").raise_for_status()
        form = {"username": user, "password": password,
                "csrf": browser.cookies["ocireg_login_csrf"], "next": "/home"}  # fmt: skip
        answer = browser.post("/home/login", data=form)
        assert answer.status_code == 303, answer.text
        return str(answer.cookies["ocireg_session"])


def _who(base: str, session: str) -> str | None:
    page = httpx.get(f"{base}/home", cookies={"ocireg_session": session}, timeout=TIMEOUT)
    found = re.search(r'class="who"[^>]*>([^<]*)<', page.text)
    return found.group(1) if found else None


def test_a_session_made_on_one_instance_opens_and_ends_on_the_other(
    tmp_path: Path, s3_endpoint: S3Endpoint, postgres: Postgres
) -> None:
    with two_instances(tmp_path, s3_endpoint, postgres, _config(tmp_path)) as (one, two):
        session = _log_in(one.url, "ann", "ann-pw")
        assert _who(two.url, session) == "ann"
        cookies = {"ocireg_session": session}
        # the API on the other instance takes it too, for requests marked as the UI's
        listed = httpx.get(f"{two.url}{KEYS}", cookies=cookies, headers=UI_HEADERS, timeout=TIMEOUT)
        assert listed.status_code == 200, listed.text
        assert httpx.get(f"{two.url}{KEYS}", headers=UI_HEADERS, timeout=TIMEOUT).status_code == 401
        # logging out through the second instance ends it on the first
        page = httpx.get(f"{two.url}/home", cookies=cookies, timeout=TIMEOUT).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        out = httpx.post(
            f"{two.url}/home/logout", cookies=cookies, data={"csrf": csrf[1]}, timeout=TIMEOUT
        )
        assert out.status_code == 303, out.text
        assert _who(one.url, session) is None
        assert (
            httpx.get(
                f"{one.url}{KEYS}", cookies=cookies, headers=UI_HEADERS, timeout=TIMEOUT
            ).status_code
            == 401
        )


def test_an_api_key_made_on_one_instance_works_and_is_revoked_on_the_other(
    tmp_path: Path, s3_endpoint: S3Endpoint, postgres: Postgres
) -> None:
    with two_instances(tmp_path, s3_endpoint, postgres, _config(tmp_path)) as (one, two):
        made = httpx.post(
            f"{one.url}{KEYS}", json={"label": "ci"}, auth=("ann", "ann-pw"), timeout=TIMEOUT
        )
        assert made.status_code == 201, made.text
        key, uuid = made.json()["apiKey"], made.json()["uuid"]
        assert (
            httpx.get(f"{two.url}/v2/_catalog", auth=("ann", key), timeout=TIMEOUT).status_code
            == 200
        )
        listed = httpx.get(f"{two.url}{KEYS}", auth=("ann", "ann-pw"), timeout=TIMEOUT).json()[
            "apiKeys"
        ]
        assert [k["label"] for k in listed] == ["ci"]
        revoked = httpx.delete(
            f"{two.url}{KEYS}", params={"id": uuid}, auth=("ann", "ann-pw"), timeout=TIMEOUT
        )
        assert revoked.status_code == 200
        assert (
            httpx.get(f"{one.url}/v2/_catalog", auth=("ann", key), timeout=TIMEOUT).status_code
            == 401
        )
        assert (
            httpx.get(f"{one.url}/v2/_catalog", auth=("ann", "ann-pw"), timeout=TIMEOUT).status_code
            == 200
        )
