"""Authentication and access control over HTTP against live registries: htpasswd with zot's
accessControl, registry tokens from a token server, LDAP users from a real slapd, the audit
log, failDelay, rate limits, and stars and bookmarks per user."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.auth.bearer import Access
from tests.auth import registries
from tests.auth.registries import write_htpasswd
from tests.auth.slapd import ALICE, BOB, Slapd
from tests.auth.tokenserver import TokenServer
from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, push_blob, put_manifest
from tests.tools import require_binary

USERS = {"alice": "alice-pw", "bob": "bob-pw", "root": "root-pw"}
FAIL_DELAY = 0.3


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """alice reads and pushes under alice/**, bob reads everything, anonymous reads public/**."""
    directory = tmp_path_factory.mktemp("htpasswd-registry")
    extra = {
        "http": {
            "realm": "test-realm",
            "auth": {
                "htpasswd": {"path": str(write_htpasswd(directory / "htpasswd", USERS))},
                "failDelay": FAIL_DELAY,
                "apikey": True,
            },
            "accessControl": {
                "repositories": {
                    "alice/**": {
                        "policies": [{"users": ["alice"], "actions": ["read", "create"]}],
                        "defaultPolicy": ["read"],
                    },
                    "public/**": {"anonymousPolicy": ["read"], "defaultPolicy": ["read"]},
                    "private/**": {"policies": [{"users": ["root"], "actions": ["read"]}]},
                },
                "adminPolicy": {"users": ["root"], "actions": ["read", "create", "delete"]},
            },
        },
        "log": {"audit": str(directory / "audit.log")},
        "extensions": {"search": {}},
    }
    with live_server(directory, extra) as live:
        yield live


def as_user(server: LiveServer, user: str | None) -> httpx.Client:
    auth = (user, USERS[user]) if user else None
    return httpx.Client(base_url=server.url, auth=auth, timeout=30)


def _push_image(client: httpx.Client, repo: str, tag: str = "v1") -> str:
    manifest = image_manifest(client, repo, [f"layer of {repo}".encode()])
    return str(put_manifest(client, repo, tag, manifest).headers["Docker-Content-Digest"])


def test_challenges_and_malformed_credentials(registry: LiveServer) -> None:
    with httpx.Client(base_url=registry.url) as client:
        anonymous = client.get("/v2/alice/x/tags/list")
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="test-realm"'
        assert anonymous.json()["errors"][0]["code"] == "UNAUTHORIZED"
        for header in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Digest x"):
            answer = client.get("/v2/", headers={"Authorization": header})
            assert answer.status_code == 401, header
        twice = client.get(
            "/v2/", headers=[("Authorization", "Basic Og=="), ("Authorization", "Basic Og==")]
        )
        assert twice.status_code == 401
        # "Og==" is ":" : no credentials at all, so anonymous (public/** is readable)
        empty = client.get("/v2/_catalog", headers={"Authorization": "Basic Og=="})
        assert empty.status_code == 200


def test_malformed_headers_get_401_and_never_echo_a_secret(registry: LiveServer) -> None:
    secret = "zak_" + "0123456789abcdef" * 2
    for header in (secret.encode(), b"Basic \xe9\xe9", b"Basic " + "é".encode()):
        answer = httpx.get(f"{registry.url}/v2/", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert secret not in answer.text


def test_wrong_password_waits_fail_delay_and_is_not_logged(registry: LiveServer) -> None:
    started = time.monotonic()
    answer = httpx.get(f"{registry.url}/v2/", auth=("alice", "guessed-Secret-42"))
    assert answer.status_code == 401
    assert time.monotonic() - started >= FAIL_DELAY
    assert "guessed-Secret-42" not in registry.log.read_text()


def test_anonymous_reads_where_allowed_after_the_v2_challenge(registry: LiveServer) -> None:
    with as_user(registry, "root") as root:
        _push_image(root, "public/app")
    with as_user(registry, None) as anonymous:
        # /v2/ challenges even so, or clients would never send their credentials
        assert anonymous.get("/v2/").status_code == 401
        assert anonymous.get("/v2/public/app/manifests/v1").status_code == 200
        assert anonymous.get("/v2/_catalog").json()["repositories"] == ["public/app"]


# Writes that are malformed or oddly typed, each of which validation alone would refuse
MALFORMED_WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "blobs/uploads/", {"content": b"x", "headers": {"Content-Type": "text/plain"}}),
    ("POST", "blobs/uploads/", {"params": {"digest": "sha256:short"}}),
    ("POST", "blobs/uploads/", {"params": {"digest-algorithm": "md5"}}),
    ("PUT", "manifests/-bad", {"content": b"{}", "headers": {"Content-Type": "text/plain"}}),
    ("PUT", "manifests/v1", {"params": {"tag": "-bad"}, "content": b"{}"}),
    ("PATCH", f"blobs/uploads/{'0' * 32}", {"content": b"x", "headers": {"Content-Range": "x"}}),
    ("DELETE", "manifests/sha256:short", {}),
]


@pytest.mark.parametrize(("method", "path", "request_args"), MALFORMED_WRITES)
def test_authorization_comes_before_validation(
    registry: LiveServer, method: str, path: str, request_args: dict[str, Any]
) -> None:
    """A caller who may not write learns nothing from a 400 or 415: a reader gets 403 and an
    anonymous caller 401, whatever is wrong with the request."""
    for user, status in ((None, 401), ("bob", 403)):
        with as_user(registry, user) as client:
            answer = client.request(method, f"/v2/public/app/{path}", **request_args)
            assert answer.status_code == status, (user, answer.text)
    with as_user(registry, "root") as root:  # one who may: validation answers
        answer = root.request(method, f"/v2/alice/app/{path}", **request_args)
        assert answer.status_code in (400, 404, 415, 416), answer.text


def test_a_mount_needs_read_on_the_source(registry: LiveServer) -> None:
    with as_user(registry, "root") as root:
        secret = push_blob(root, "private/vault", b"the secret layer")
        shared = push_blob(root, "public/shared", b"a public layer")
    with as_user(registry, "alice") as alice:
        refused = alice.post(
            "/v2/alice/app/blobs/uploads/", params={"mount": secret, "from": "private/vault"}
        )
        assert refused.status_code == 202  # a plain upload: nothing was mounted
        assert alice.head(f"/v2/alice/app/blobs/{secret}").status_code == 404
        # nor when the source is left out (the registry looks for the blob itself)
        guessed = alice.post("/v2/alice/app/blobs/uploads/", params={"mount": secret})
        assert guessed.status_code == 202
        mounted = alice.post(
            "/v2/alice/app/blobs/uploads/", params={"mount": shared, "from": "public/shared"}
        )
        assert mounted.status_code == 201
        assert alice.head(f"/v2/alice/app/blobs/{shared}").status_code == 200


def test_an_api_key_request_without_a_body_is_400(registry: LiveServer) -> None:
    with as_user(registry, "bob") as bob:
        for body in (b"", b"[]"):
            answer = bob.post("/zot/auth/apikey", content=body,
                              headers={"Content-Type": "application/json"})  # fmt: skip
            assert answer.status_code == 400, answer.text
            assert answer.json()["errors"][0]["code"] == "UNSUPPORTED"


def test_the_audit_log_has_each_successful_write_and_who_made_it(registry: LiveServer) -> None:
    with as_user(registry, "alice") as alice:
        digest = _push_image(alice, "alice/audited")
        denied = alice.put(
            "/v2/private/vault/manifests/v1",
            content=b"{}",
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert denied.status_code == 403
    lines = [
        json.loads(line) for line in (registry.root.parent / "audit.log").read_text().splitlines()
    ]
    pushes = [line for line in lines if line["object"] == "/v2/alice/audited/manifests/v1"]
    assert pushes == [
        {
            **pushes[0],
            "msg": "HTTP API Audit",
            "subject": "alice",
            "action": "PUT",
            "status": 201,
            "repo": "alice/audited",
            "digest": digest,
        }
    ]
    mine = [line for line in lines if line["subject"] == "alice"]
    assert not [line for line in mine if line["object"].startswith("/v2/private/")]
    assert all(line["action"] in ("POST", "PUT", "PATCH", "DELETE") for line in lines)
    text = (registry.root.parent / "audit.log").read_text()
    assert "alice-pw" not in text and "Authorization" not in text


def test_the_request_log_names_the_user(registry: LiveServer) -> None:
    with as_user(registry, "bob") as bob:
        assert bob.get("/v2/_catalog").status_code == 200
    # The line is written just after the response went out: wait for it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        catalog = [
            json.loads(line)
            for line in registry.log_lines()
            if '"path":"/v2/_catalog"' in line and '"user":"bob"' in line
        ]
        if catalog:
            break
        time.sleep(0.05)
    assert catalog, "no request line with the user"


def _search(client: httpx.Client, query: str) -> Any:
    answer = client.post("/v2/_zot/ext/search", json={"query": query})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_stars_and_bookmarks_belong_to_each_user(registry: LiveServer) -> None:
    with as_user(registry, "alice") as alice:
        _push_image(alice, "alice/starred")
    prefs = "/v2/_zot/ext/userprefs"
    with as_user(registry, "bob") as bob, as_user(registry, "alice") as alice:
        star = {"action": "toggleStar", "repo": "alice/starred"}
        assert bob.put(prefs, params=star).status_code == 200
        assert alice.put(prefs, params=star).status_code == 200
        bookmark = {"action": "toggleBookmark", "repo": "alice/starred"}
        assert bob.put(prefs, params=bookmark).status_code == 200
        time.sleep(1.5)  # search reads the meta DB, which workers flush every second
        starred = "{ StarredRepos { Results { Name StarCount IsStarred IsBookmarked } } }"
        mine = _search(bob, starred)["StarredRepos"]["Results"]
        assert mine == [
            {"Name": "alice/starred", "StarCount": 2, "IsStarred": True, "IsBookmarked": True}
        ]
        bookmarked = "{ BookmarkedRepos { Results { Name } } }"
        assert _search(alice, bookmarked)["BookmarkedRepos"]["Results"] == []
        assert bob.put(prefs, params=star).status_code == 200  # toggles back
        time.sleep(1.5)
        assert _search(bob, starred)["StarredRepos"]["Results"] == []

        assert (
            bob.put(prefs, params={"action": "toggleStar", "repo": "alice/none"}).status_code == 404
        )
        assert (
            alice.put(prefs, params={"action": "toggleStar", "repo": "private/vault"}).status_code
            == 403
        )
        assert bob.put(prefs, params={"action": "star", "repo": "alice/starred"}).status_code == 400
        assert bob.put(prefs, params={"action": "toggleStar"}).status_code == 400
    anonymous = httpx.put(f"{registry.url}{prefs}", params=star)
    assert anonymous.status_code == 403  # zot's: anonymous callers are admitted (public/**)


def test_search_says_who_pushed_an_image(registry: LiveServer) -> None:
    with as_user(registry, "alice") as alice:
        _push_image(alice, "alice/pushed")
        time.sleep(1.5)
        query = '{ ImageList(repo: "alice/pushed") { Results { Tag PushedBy } } }'
        found = _search(alice, query)["ImageList"]["Results"]
    assert found == [{"Tag": "v1", "PushedBy": "alice"}]


def test_search_answers_only_what_the_caller_may_read(registry: LiveServer) -> None:
    with as_user(registry, "root") as root:
        _push_image(root, "private/hidden")
    time.sleep(1.5)
    query = '{ GlobalSearch(query: "hidden") { Repos { Name } } }'
    with as_user(registry, "root") as root, as_user(registry, "alice") as alice:
        assert _search(root, query)["GlobalSearch"]["Repos"] == [{"Name": "private/hidden"}]
        assert _search(alice, query)["GlobalSearch"]["Repos"] == []
        image = '{ Image(image: "private/hidden:v1") { Tag } }'
        assert alice.post("/v2/_zot/ext/search", json={"query": image}).json()["data"] is None


def test_api_keys_work_as_passwords_until_revoked_or_expired(registry: LiveServer) -> None:
    keys = "/zot/auth/apikey"
    with as_user(registry, "alice") as alice:
        made = alice.post(keys, json={"label": "ci", "scopes": ["alice/app"]})
        assert made.status_code == 201, made.text
        key, details = made.json()["apiKey"], made.json()
        assert key.startswith("zak_") and details["label"] == "ci"
        assert details["expirationDate"] == "0001-01-01T00:00:00Z" and not details["isExpired"]
        soon = datetime.now(UTC) + timedelta(seconds=2)
        short = alice.post(keys, json={"label": "short", "expirationDate": soon.isoformat()})
        assert short.status_code == 201
        listed = alice.get(keys).json()["apiKeys"]
        assert [k["label"] for k in listed] == ["ci", "short"]
        assert key not in json.dumps(listed)
    with httpx.Client(base_url=registry.url, auth=("alice", key)) as by_key:
        _push_image(by_key, "alice/by-key")
        # a key cannot make more keys
        assert by_key.post(keys, json={"label": "more"}).status_code == 403
    assert httpx.get(f"{registry.url}/v2/", auth=("bob", key)).status_code == 401  # not bob's
    time.sleep(2.5)
    expired = httpx.get(f"{registry.url}/v2/", auth=("alice", short.json()["apiKey"]))
    assert expired.status_code == 401
    with as_user(registry, "alice") as alice:
        assert alice.delete(keys, params={"id": details["uuid"]}).status_code == 200
        assert [k["label"] for k in alice.get(keys).json()["apiKeys"]] == ["short"]
        assert alice.get(keys).json()["apiKeys"][0]["isExpired"] is True
        for bad in ({"expirationDate": "tomorrow"}, {"expirationDate": "2001-01-01T00:00:00Z"},
                    {"label": 7}):  # fmt: skip
            assert alice.post(keys, json=bad).status_code == 400, bad
    assert httpx.get(f"{registry.url}/v2/", auth=("alice", key)).status_code == 401
    assert key not in registry.log.read_text()


def test_api_key_requests_too_large_or_too_deep_are_refused(registry: LiveServer) -> None:
    keys = "/zot/auth/apikey"
    with as_user(registry, "alice") as alice:
        deep = '{"label": "x", "other": ' + "[" * 1_000 + "]" * 1_000 + "}"
        answer = alice.post(keys, content=deep, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"][0]["code"] == "UNSUPPORTED"
        large = alice.post(keys, json={"label": "x", "padding": "x" * 40_000})
        assert large.status_code == 413, large.text
        assert large.json()["errors"][0]["message"] == "request body larger than 32768 bytes"
        assert alice.post(keys, json={"label": "still works"}).status_code == 201


def test_a_user_added_to_the_htpasswd_file_logs_in_without_a_restart(tmp_path: Path) -> None:
    openssl = require_binary("openssl", "apt-get install openssl")
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "alice-pw"})
    extra = {"http": {"auth": {"htpasswd": {"path": str(htpasswd)}}}}
    with live_server(tmp_path, extra) as live:
        assert httpx.get(f"{live.url}/v2/", auth=("carol", "carol-pw")).status_code == 401
        sha512 = subprocess.run(
            [openssl, "passwd", "-6", "carol-pw"], capture_output=True, text=True, check=True
        ).stdout.strip()
        replacement = tmp_path / "htpasswd.new"
        replacement.write_text(htpasswd.read_text() + f"carol:{sha512}\n")
        replacement.replace(htpasswd)
        deadline = time.monotonic() + 10
        while httpx.get(f"{live.url}/v2/", auth=("carol", "carol-pw")).status_code != 200:
            assert time.monotonic() < deadline, "the new user never got in"
            time.sleep(0.2)
        assert httpx.get(f"{live.url}/v2/", auth=("alice", "alice-pw")).status_code == 200


def test_far_future_or_odd_expiration_dates_are_400(registry: LiveServer) -> None:
    with as_user(registry, "bob") as bob:
        for date in ("9999-12-31T23:59:59-01:00", "2027-W01-1T00:00:00Z", "2027-02-30T00:00:00Z"):
            answer = bob.post("/zot/auth/apikey", json={"expirationDate": date})
            assert answer.status_code == 400, date
        assert bob.get("/zot/auth/apikey").status_code == 200


def test_access_control_alone_ignores_credentials(tmp_path: Path) -> None:
    """Without an authentication method a client's stored credentials mean nothing: the
    request is anonymous, as in zot, instead of refused."""
    extra = {"http": {"accessControl": {"repositories": {"**": {"anonymousPolicy": ["read"]}}}}}
    with (
        live_server(tmp_path, extra) as live,
        httpx.Client(base_url=live.url, auth=("alice", "whatever")) as client,
    ):
        assert client.get("/v2/").status_code == 200
        assert client.get("/v2/_catalog").status_code == 200
        assert client.post("/v2/x/y/blobs/uploads/").status_code == 401


def test_api_keys_are_404_when_off(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", {"alice": "alice-pw"})
    extra = {"http": {"auth": {"htpasswd": {"path": str(htpasswd)}}}}
    with live_server(tmp_path, extra) as live:
        answer = httpx.post(f"{live.url}/zot/auth/apikey", json={}, auth=("alice", "alice-pw"))
    assert answer.status_code == 404


# -- registry tokens ---------------------------------------------------------------------


def _pull_push(subject: str, requested: Access) -> list[str]:
    """The token server's policy: writers may push under their name, everyone may pull."""
    if requested.name.startswith(f"{subject}/") and subject:
        return ["pull", "push"]
    return ["pull"]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    directory = tmp_path_factory.mktemp("token-server")
    with TokenServer(directory, users={"tess": "tess-pw"}, policy=_pull_push) as server:
        yield server


@pytest.fixture(scope="module")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, tokens: TokenServer
) -> Iterator[LiveServer]:
    with registries.token_registry(tmp_path_factory.mktemp("token-registry"), tokens) as live:
        yield live


def _token(tokens: TokenServer, scope: str, user: tuple[str, str] | None = None) -> str:
    answer = httpx.get(tokens.realm, params={"service": tokens.service, "scope": scope}, auth=user)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def test_the_token_flow(token_registry: LiveServer, tokens: TokenServer) -> None:
    challenge = httpx.get(f"{token_registry.url}/v2/tess/app/tags/list")
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"] == (
        f'Bearer realm="{tokens.realm}",service="{tokens.service}",scope="repository:tess/app:pull"'
    )
    push = _token(tokens, "repository:tess/app:pull,push", ("tess", "tess-pw"))
    with httpx.Client(
        base_url=token_registry.url, headers={"Authorization": f"Bearer {push}"}
    ) as client:
        _push_image(client, "tess/app")
        assert client.get("/v2/tess/app/tags/list").json()["tags"] == ["v1"]
    pull = _token(tokens, "repository:tess/app:pull,push")  # anonymous: pull only
    with httpx.Client(
        base_url=token_registry.url, headers={"Authorization": f"Bearer {pull}"}
    ) as client:
        assert client.get("/v2/tess/app/tags/list").status_code == 200
        refused = client.post("/v2/tess/app/blobs/uploads/")
        assert refused.status_code == 401
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
        assert 'scope="repository:tess/app:pull,push"' in refused.headers["WWW-Authenticate"]
    log = token_registry.log.read_text()
    assert push not in log and pull not in log  # tokens never reach a log line


def test_a_name_that_is_no_name_gets_a_challenge_without_a_scope(
    token_registry: LiveServer,
) -> None:
    """Authorization comes before validation, so the challenge must not quote what cannot be
    a repository name (a control character is no scope)."""
    answer = httpx.get(f"{token_registry.url}/v2/a%01b/tags/list")
    assert answer.status_code == 401
    assert "scope=" not in answer.headers["WWW-Authenticate"]


def test_a_mount_asks_for_a_token_that_covers_the_source(
    token_registry: LiveServer, tokens: TokenServer
) -> None:
    def client(*access: Access) -> httpx.Client:
        token = tokens.issue("tess", list(access))
        return httpx.Client(
            base_url=token_registry.url, headers={"Authorization": f"Bearer {token}"}
        )

    push = frozenset({"pull", "push"})
    with client(Access("repository", "other/src", push)) as other:
        blob = push_blob(other, "other/src", b"a layer to mount")
    mount = {"mount": blob, "from": "other/src"}
    with client(Access("repository", "tess/app", push)) as narrow:
        asked = narrow.post("/v2/tess/app/blobs/uploads/", params=mount)
    assert asked.status_code == 401
    challenge = asked.headers["WWW-Authenticate"]
    assert 'scope="repository:tess/app:pull,push repository:other/src:pull"' in challenge
    assert 'error="insufficient_scope"' in challenge
    wide = (
        Access("repository", "tess/app", push),
        Access("repository", "other/src", frozenset({"pull"})),
    )
    with client(*wide) as both:
        assert both.post("/v2/tess/app/blobs/uploads/", params=mount).status_code == 201


def test_expired_and_foreign_tokens_are_refused(
    token_registry: LiveServer, tokens: TokenServer, tmp_path: Path
) -> None:
    expired = tokens.issue("tess", [Access("repository", "tess/app", frozenset({"pull"}))],
                           expires_in=-120)  # fmt: skip
    other = TokenServer(tmp_path / "other").issue(
        "tess", [Access("repository", "tess/app", frozenset({"pull"}))]
    )
    for token in (expired, other, "not.a.jwt"):
        answer = httpx.get(
            f"{token_registry.url}/v2/tess/app/tags/list",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 401
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_htpasswd_next_to_bearer_is_never_consulted(tokens: TokenServer, tmp_path: Path) -> None:
    # zot accepts both and looks only at tokens; ocireg does the same and warns at start.
    htpasswd = registries.write_htpasswd(tmp_path / "htpasswd", {"tess": "tess-pw"})
    auth = {"bearer": tokens.config().model_dump(), "htpasswd": {"path": str(htpasswd)}}
    with live_server(tmp_path / "both", {"http": {"auth": auth}}) as live:
        answer = httpx.get(f"{live.url}/v2/tess/app/tags/list", auth=("tess", "tess-pw"))
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer realm=")
        token = _token(tokens, "repository:tess/app:pull", ("tess", "tess-pw"))
        with_token = httpx.get(
            f"{live.url}/v2/tess/app/tags/list", headers={"Authorization": f"Bearer {token}"}
        )
        assert with_token.status_code == 404  # authenticated: the repository does not exist
        assert any(
            line["msg"].startswith("configuration: http.auth.htpasswd: not used")
            for line in live.log_events()
        )


# -- LDAP ----------------------------------------------------------------------------------


@pytest.fixture
def ldap_registry(slapd: Slapd, tmp_path: Path) -> Iterator[LiveServer]:
    extra = {
        "http": {
            "auth": {"ldap": slapd.ldap_config()},
            "accessControl": {
                "repositories": {
                    "**": {"policies": [{"groups": ["admins"], "actions": ["read", "create"]}]},
                },
            },
        }
    }
    with live_server(tmp_path, extra) as live:
        yield live


def test_ldap_users_and_their_groups(ldap_registry: LiveServer) -> None:
    with httpx.Client(base_url=ldap_registry.url, auth=(ALICE.uid, ALICE.password)) as alice:
        _push_image(alice, "team/app")  # alice is in admins
    with httpx.Client(base_url=ldap_registry.url, auth=(BOB.uid, BOB.password)) as bob:
        assert bob.get("/v2/team/app/tags/list").status_code == 403  # only in devs
    wrong = httpx.get(f"{ldap_registry.url}/v2/", auth=(ALICE.uid, "not-her-password"))
    assert wrong.status_code == 401


# -- rate limits ---------------------------------------------------------------------------


def test_rate_limits_answer_429(tmp_path: Path) -> None:
    extra = {"http": {"ratelimit": {"rate": 1000, "methods": [{"method": "GET", "rate": 2}]}}}
    with live_server(tmp_path, extra) as live, httpx.Client(base_url=live.url) as client:
        time.sleep(1.1)  # the start-up check's requests spent some: let the bucket fill up
        statuses = [client.get("/v2/").status_code for _ in range(6)]
        assert statuses[:2] == [200, 200]
        limited = client.get("/v2/")
        assert limited.status_code == 429
        assert limited.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert int(limited.headers["Retry-After"]) >= 1
        assert client.post("/v2/rl/app/blobs/uploads/").status_code == 202  # POST: overall only
        assert client.get("/livez").status_code == 200  # probes are never limited
        # the client address is the TCP peer: X-Forwarded-For does not buy a new bucket
        spoofed = client.get("/v2/", headers={"X-Forwarded-For": "203.0.113.9"})
        assert spoofed.status_code == 429
