"""A PostgreSQL meta DB that goes silent holds up the requests that need it, not the others.

The instance reaches PostgreSQL through a proxy that can hold every byte (``PausableProxy``):
the server then looks alive and answers nothing, as one that stalls does. Requests that ask the
meta DB (API keys listed or logging in, a UI session, a star, a trust key, an upload's
per-client cap, a pull that ``requireSignature`` gates, the operations page, the catalog) wait
for it; meanwhile ``/v2/`` (a password login, a first one too) and ``/metrics`` must answer at
once, which they cannot while any of them waits on the event loop, or holds threads they need.
Once the server answers again, every one of them succeeds (or, for the gated pulls, is refused
as it should be)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.auth.registries import EVERY_ACTION, write_htpasswd
from tests.oci import image_manifest, push_blob, put_manifest
from tests.scaleout.instances import Shared, instance
from tests.tcpproxy import PausableProxy

REPO = "silent/db"
GATED = "gated/app"
# as many gated pulls as asyncio's default executor has threads: were their checks waiting
# there, the work that shares those threads would wait too
GATED_PULLS = min(32, (os.cpu_count() or 1) + 4)
# more catalog pages than anyio's default threads (40): were they read there, /metrics,
# rendered on those threads, would wait too
CATALOGS = 45
AUTH = ("ann", "ann-pw")
# a user whose first login comes while the database is silent: her password is checked on a
# thread (bcrypt), not from the cache of passwords checked before
NEWCOMER = ("bob", "bob-pw")
UI_HEADERS = {"X-ZOT-API-CLIENT": "zot-ui"}  # the API honours a session only from the UI
PUBLIC_KEY = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)


def _through(database: str, proxy: PausableProxy) -> str:
    """The database URL with the proxy's address in place of the server's."""
    parts = urlsplit(database)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{proxy.port}"))


def _config(shared: Shared, database: str, directory: Path) -> dict[str, Any]:
    config = shared.config()
    config["storage"]["cacheDriver"]["url"] = database
    htpasswd = write_htpasswd(directory / "htpasswd", {"ann": "ann-pw", **dict([NEWCOMER])})
    config["http"] = {
        "realm": "silent",
        "auth": {"htpasswd": {"path": str(htpasswd)}, "apikey": True},
        "accessControl": {
            "repositories": {"**": {"policies": [{"users": ["ann"], "actions": EVERY_ACTION}]}},
            "adminPolicy": {"users": ["ann"], "actions": EVERY_ACTION},
        },
        "maxUploadSessionsPerClient": 100,  # counted in PostgreSQL, across instances
    }
    config["http"]["accessControl"]["metrics"] = {"users": ["ann"]}
    trust = {"cosign": True, "requireSignature": ["gated/**"]}
    config["extensions"] = {"search": {}, "ui": {}, "trust": trust, "metrics": {}}
    return config


def _log_in(base: str) -> str:
    """The session cookie a login through the UI's form sets."""
    with httpx.Client(base_url=base, timeout=60) as browser:
        browser.get("/home/login").raise_for_status()
        form = {"username": "ann", "password": "ann-pw",
                "csrf": browser.cookies["ocireg_login_csrf"], "next": "/home"}  # fmt: skip
        answer = browser.post("/home/login", data=form)
        assert answer.status_code == 303, answer.text
        return str(answer.cookies["ocireg_session"])


def _requests(
    base: str, session: str, key: str, gated: str
) -> dict[str, Callable[[], httpx.Response]]:
    """Each request that asks the meta DB, by what it exercises."""
    cookies = {"ocireg_session": session}

    def call(
        method: str, path: str, cookies: dict[str, str] | None = None, **options: Any
    ) -> Callable[[], httpx.Response]:
        def made() -> httpx.Response:
            with httpx.Client(base_url=base, cookies=cookies, timeout=120) as client:
                return client.request(method, path, **options)

        return made

    return (
        {
            "API keys listed": call("GET", "/zot/auth/apikey", auth=AUTH),
            "logged in with an API key": call("GET", "/v2/", auth=("ann", key)),
            "UI session on the API": call(
                "GET", "/zot/auth/apikey", cookies=cookies, headers=UI_HEADERS
            ),
            "UI page of a session": call("GET", "/home", cookies=cookies),
            "star toggled": call(
                "PUT",
                "/v2/_zot/ext/userprefs",
                params={"action": "toggleStar", "repo": REPO},
                auth=AUTH,
            ),
            "cosign key uploaded": call(
                "POST", "/v2/_zot/ext/cosign", content=PUBLIC_KEY, auth=AUTH
            ),
            "upload started (per-client cap)": call(
                "POST", f"/v2/{REPO}/blobs/uploads/", auth=AUTH
            ),
            "operations page": call("GET", "/home/operations", cookies=cookies),
        }
        | {
            f"gated pull {n}": call("GET", f"/v2/{GATED}/manifests/{gated}", auth=AUTH)
            for n in range(GATED_PULLS)
        }
        | {f"catalog {n}": call("GET", "/v2/_catalog", auth=AUTH) for n in range(CATALOGS)}
    )


def test_requests_waiting_on_a_silent_postgres_leave_the_others_served(
    tmp_path: Path, shared: Shared
) -> None:
    target = urlsplit(shared.database)
    assert target.hostname is not None and target.port is not None
    with PausableProxy(target.hostname, target.port) as proxy:
        config = _config(shared, _through(shared.database, proxy), tmp_path)
        with instance(tmp_path / "one", config) as server:
            with httpx.Client(base_url=server.url, auth=AUTH, timeout=60) as client:
                push_blob(client, REPO, b"the repository exists")
                image = image_manifest(client, GATED)
                gated = put_manifest(client, GATED, "v1", image).headers["Docker-Content-Digest"]
                made = client.post("/zot/auth/apikey", json={"label": "silent"})
                assert made.status_code == 201, made.text
            session = _log_in(server.url)
            requests = _requests(server.url, session, made.json()["apiKey"], gated)
            with ThreadPoolExecutor(len(requests)) as pool:
                proxy.pause()
                try:
                    pending = {name: pool.submit(made) for name, made in requests.items()}
                    time.sleep(1)  # each has reached its meta DB query
                    _assert_served_meanwhile(server.url, "/v2/", AUTH)
                    _assert_served_meanwhile(server.url, "/v2/", NEWCOMER)
                    _assert_served_meanwhile(server.url, "/metrics", AUTH)
                    waiting = [name for name, future in pending.items() if not future.done()]
                    assert waiting == list(requests), (
                        f"only {waiting} waited for the silent database: "
                        + _outcomes({n: f for n, f in pending.items() if f.done()})
                    )
                finally:
                    proxy.resume()
                answers = {name: future.result(timeout=60) for name, future in pending.items()}
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "API keys listed": 200,
        "logged in with an API key": 200,
        "UI session on the API": 200,
        "UI page of a session": 200,
        "star toggled": 200,
        "cosign key uploaded": 200,
        "upload started (per-client cap)": 202,
        "operations page": 200,
    } | {f"gated pull {n}": 403 for n in range(GATED_PULLS)} | {
        f"catalog {n}": 200 for n in range(CATALOGS)
    }, _outcomes(pending)
    # the page was the session's user's, and the star was recorded for her
    found = re.search(r'class="who"[^>]*>([^<]*)<', answers["UI page of a session"].text)
    assert found is not None and found.group(1) == "ann"


def _assert_served_meanwhile(base: str, path: str, auth: tuple[str, str]) -> None:
    """``path`` answers within a second while the meta DB is silent."""
    started = time.monotonic()
    try:
        answer = httpx.get(f"{base}{path}", auth=auth, timeout=3)
    except httpx.TimeoutException:
        raise AssertionError(f"{path} for {auth[0]} waited for the silent database") from None
    took = time.monotonic() - started
    assert answer.status_code == 200, (path, answer.status_code)
    assert took < 1, f"{path} took {took:.1f} s for {auth[0]}: it waited for the silent database"


def _outcomes(futures: dict[str, Future[httpx.Response]]) -> str:
    told = []
    for name, future in futures.items():
        error = future.exception()
        outcome = repr(error) if error else f"{future.result().status_code}"
        told.append(f"{name}: {outcome}")
    return "; ".join(told)
