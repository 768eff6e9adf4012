"""Every endpoint the registry serves (core and extensions) against every kind of caller: each
answer's status, and that a refused write changed nothing in storage.

The registry runs with htpasswd users and zot's accessControl: ``reader`` may read,
``creator`` may also push new tags but not move existing ones, ``writer`` may also move them,
``admin`` may do everything (adminPolicy) and read metrics; anonymous callers may do nothing
that needs a repository.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocireg.auth.bearer import Access
from tests.auth.registries import write_htpasswd
from tests.auth.tokenserver import TokenServer
from tests.liveserver import LiveServer, live_server
from tests.oci import canonical, image_manifest, push_blob, put_manifest, sha256

PASSWORDS = {
    "reader": "read-pw",
    "creator": "create-pw",
    "writer": "write-pw",
    "admin": "admin-pw",
}
ACCESS_CONTROL = {
    "groups": {"writers": {"users": ["writer"]}},
    "repositories": {
        "**": {
            "policies": [
                {"users": ["reader"], "actions": ["read"]},
                {"users": ["creator"], "actions": ["read", "create"]},
                {"groups": ["writers"], "actions": ["read", "create", "update"]},
            ]
        }
    },
    "adminPolicy": {"users": ["admin"], "actions": ["read", "create", "update", "delete"]},
    "metrics": {"users": ["admin"]},
}
# what each caller may do ("admin": zot's admin-only endpoints); "wrong" sends the writer's
# name with a wrong password, "revoked" with an API key of the writer's that was revoked
CALLERS: dict[str, set[str]] = {
    "anonymous": set(),
    "reader": {"read", "login", "authenticated"},
    "creator": {"read", "create", "login", "authenticated"},
    "writer": {"read", "create", "update", "login", "authenticated"},
    "admin": {"read", "create", "update", "delete", "login", "authenticated", "metrics", "admin"},
    "wrong": set(),
    "revoked": set(),
}
FREE = {"anyone", "listing"}  # needs every caller meets (with credentials that are right)
_names = itertools.count()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp("guarded")
    htpasswd = write_htpasswd(directory / "htpasswd", PASSWORDS)
    extra = {
        "http": {
            "realm": "matrix",
            "auth": {"htpasswd": {"path": str(htpasswd)}, "apikey": True},
            "accessControl": ACCESS_CONTROL,
        },
        "extensions": {"mgmt": {}, "search": {}, "metrics": {}, "trust": TRUST},
    }
    with live_server(directory, extra) as live:
        writer = ("writer", PASSWORDS["writer"])
        made = httpx.post(f"{live.url}/zot/auth/apikey", json={"label": "gone"}, auth=writer)
        assert made.status_code == 201, made.text
        revoke = {"id": made.json()["uuid"]}
        assert httpx.delete(f"{live.url}/zot/auth/apikey", params=revoke, auth=writer).is_success
        REVOKED.append(made.json()["apiKey"])
        yield live


REVOKED: list[str] = []  # the writer's API key, revoked before any test runs


def _client(server: LiveServer, caller: str) -> httpx.Client:
    auth: tuple[str, str] | None = None
    if caller == "wrong":
        auth = ("writer", "not-the-password")
    elif caller == "revoked":
        auth = ("writer", REVOKED[0])
    elif caller != "anonymous":
        auth = (caller, PASSWORDS[caller])
    return httpx.Client(base_url=server.url, auth=auth, timeout=30)


@dataclass
class Seeded:
    """A repository the admin filled: tag v1, a spare blob, an open upload."""

    repo: str
    manifest: dict[str, Any]
    digest: str
    blob: str
    upload: str  # the upload's Location path
    source: str  # another repository holding a blob to mount


def _seed(admin: httpx.Client) -> Seeded:
    n = next(_names)
    repo, source = f"matrix/r{n}", f"matrix/source{n}"
    manifest = image_manifest(admin, repo, [f"layer {n}".encode()])
    digest = put_manifest(admin, repo, "v1", manifest).headers["Docker-Content-Digest"]
    blob = push_blob(admin, repo, f"spare {n}".encode())
    push_blob(admin, source, f"mountable {n}".encode())
    started = admin.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    return Seeded(repo, manifest, digest, blob, started.headers["Location"], source)


Call = Callable[[httpx.Client, Seeded], httpx.Response]


@dataclass(frozen=True)
class Case:
    operation: str  # "METHOD /path/template" as the spec declares it
    need: str  # read, create, update, delete, anyone, login, listing, authenticated, metrics
    call: Call
    ok: int  # the status when the caller may


def _put_new_tag(client: httpx.Client, s: Seeded) -> httpx.Response:
    return client.put(
        f"/v2/{s.repo}/manifests/v2",
        content=canonical(s.manifest),
        headers={"Content-Type": s.manifest["mediaType"]},
    )


def _move_tag(client: httpx.Client, s: Seeded) -> httpx.Response:
    moved = {**s.manifest, "annotations": {"moved": "yes"}}
    return client.put(
        f"/v2/{s.repo}/manifests/v1",
        content=canonical(moved),
        headers={"Content-Type": moved["mediaType"]},
    )


SEARCH = '{ ImageList(repo: "") { Results { RepoName Tag } } }'
TRUST = {"cosign": True, "notation": True}
PUBLIC_KEY = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)
UNKNOWN_KEY = {"digest": sha256(b"no such key")}


def _certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "matrix CA")])
    now = datetime.now(UTC)
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return built.public_bytes(serialization.Encoding.PEM)


CERTIFICATE = _certificate()
CASES = [
    Case("GET /v2/", "login", lambda c, s: c.get("/v2/"), 200),
    Case("GET /v2/_catalog", "listing", lambda c, s: c.get("/v2/_catalog"), 200),
    Case("GET /v2/_oci/ext/discover", "anyone", lambda c, s: c.get("/v2/_oci/ext/discover"), 200),
    Case(
        "GET /v2/{name}/_oci/ext/discover",
        "read",
        lambda c, s: c.get(f"/v2/{s.repo}/_oci/ext/discover"),
        200,
    ),
    Case(
        "HEAD /v2/{name}/manifests/{reference}",
        "read",
        lambda c, s: c.head(f"/v2/{s.repo}/manifests/v1"),
        200,
    ),
    Case(
        "GET /v2/{name}/manifests/{reference}",
        "read",
        lambda c, s: c.get(f"/v2/{s.repo}/manifests/v1"),
        200,
    ),
    Case("PUT /v2/{name}/manifests/{reference}", "create", _put_new_tag, 201),
    Case("PUT /v2/{name}/manifests/{reference}", "update", _move_tag, 201),
    Case(
        "DELETE /v2/{name}/manifests/{reference}",
        "delete",
        lambda c, s: c.delete(f"/v2/{s.repo}/manifests/{s.digest}"),
        202,
    ),
    Case(
        "HEAD /v2/{name}/blobs/{digest}",
        "read",
        lambda c, s: c.head(f"/v2/{s.repo}/blobs/{s.blob}"),
        200,
    ),
    Case(
        "GET /v2/{name}/blobs/{digest}",
        "read",
        lambda c, s: c.get(f"/v2/{s.repo}/blobs/{s.blob}"),
        200,
    ),
    Case(
        "DELETE /v2/{name}/blobs/{digest}",
        "delete",
        lambda c, s: c.delete(f"/v2/{s.repo}/blobs/{s.blob}"),
        202,
    ),
    Case(
        "POST /v2/{name}/blobs/uploads/",
        "create",
        lambda c, s: c.post(f"/v2/{s.repo}/blobs/uploads/"),
        202,
    ),
    Case("GET /v2/{name}/blobs/uploads/{session_id}", "create", lambda c, s: c.get(s.upload), 204),
    Case(
        "PATCH /v2/{name}/blobs/uploads/{session_id}",
        "create",
        lambda c, s: c.patch(
            s.upload, content=b"abc", headers={"Content-Type": "application/octet-stream"}
        ),
        202,
    ),
    Case(
        "PUT /v2/{name}/blobs/uploads/{session_id}",
        "create",
        lambda c, s: c.put(
            s.upload,
            params={"digest": sha256(b"abc")},
            content=b"abc",
            headers={"Content-Type": "application/octet-stream"},
        ),
        201,
    ),
    Case(
        "DELETE /v2/{name}/blobs/uploads/{session_id}",
        "create",
        lambda c, s: c.delete(s.upload),
        204,
    ),
    Case("GET /v2/{name}/tags/list", "read", lambda c, s: c.get(f"/v2/{s.repo}/tags/list"), 200),
    Case(
        "GET /v2/{name}/referrers/{digest}",
        "read",
        lambda c, s: c.get(f"/v2/{s.repo}/referrers/{s.digest}"),
        200,
    ),
    Case("GET /livez", "anyone", lambda c, s: c.get("/livez"), 200),
    Case("GET /readyz", "anyone", lambda c, s: c.get("/readyz"), 200),
    Case("GET /startupz", "anyone", lambda c, s: c.get("/startupz"), 200),
    Case("GET /v2/_zot/ext/mgmt", "anyone", lambda c, s: c.get("/v2/_zot/ext/mgmt"), 200),
    Case(
        "GET /v2/_zot/ext/search",
        "listing",
        lambda c, s: c.get("/v2/_zot/ext/search", params={"query": SEARCH}),
        200,
    ),
    Case(
        "POST /v2/_zot/ext/search",
        "listing",
        lambda c, s: c.post("/v2/_zot/ext/search", json={"query": SEARCH}),
        200,
    ),
    Case(
        "PUT /v2/_zot/ext/userprefs",
        "authenticated",
        lambda c, s: c.put(
            "/v2/_zot/ext/userprefs", params={"action": "toggleStar", "repo": s.repo}
        ),
        200,
    ),
    Case(
        "GET /v2/_ocireg/ext/specs/{document}",
        "anyone",
        lambda c, s: c.get("/v2/_ocireg/ext/specs/ext-zot-mgmt.md"),
        200,
    ),
    Case("GET /metrics", "metrics", lambda c, s: c.get("/metrics"), 200),
    Case(
        "POST /v2/_zot/ext/cosign",
        "admin",
        lambda c, s: c.post("/v2/_zot/ext/cosign", content=PUBLIC_KEY),
        200,
    ),
    Case("GET /v2/_zot/ext/cosign", "admin", lambda c, s: c.get("/v2/_zot/ext/cosign"), 200),
    Case(
        "DELETE /v2/_zot/ext/cosign",
        "admin",
        lambda c, s: c.delete("/v2/_zot/ext/cosign", params=UNKNOWN_KEY),
        404,
    ),
    Case(
        "POST /v2/_zot/ext/notation",
        "admin",
        lambda c, s: c.post("/v2/_zot/ext/notation", content=CERTIFICATE),
        200,
    ),
    Case("GET /v2/_zot/ext/notation", "admin", lambda c, s: c.get("/v2/_zot/ext/notation"), 200),
    Case(
        "DELETE /v2/_zot/ext/notation",
        "admin",
        lambda c, s: c.delete("/v2/_zot/ext/notation", params=UNKNOWN_KEY),
        404,
    ),
    Case("GET /zot/auth/apikey", "authenticated", lambda c, s: c.get("/zot/auth/apikey"), 200),
    Case(
        "POST /zot/auth/apikey",
        "authenticated",
        lambda c, s: c.post("/zot/auth/apikey", json={"label": "matrix"}),
        201,
    ),
    Case(
        "DELETE /zot/auth/apikey",
        "authenticated",
        lambda c, s: c.delete("/zot/auth/apikey", params={"id": "no-such-key"}),
        200,
    ),
    # OpenID login is off in this registry (tests/auth/test_openid.py has it on)
    Case(
        "GET /zot/auth/login",
        "anyone",
        lambda c, s: c.get("/zot/auth/login", params={"provider": "oidc"}),
        404,
    ),
    Case(
        "GET /zot/auth/callback/{provider}",
        "anyone",
        lambda c, s: c.get("/zot/auth/callback/oidc", params={"code": "c", "state": "s"}),
        404,
    ),
    Case("POST /zot/auth/logout", "anyone", lambda c, s: c.post("/zot/auth/logout"), 200),
]


def _expected(case: Case, caller: str) -> int:
    if caller in ("wrong", "revoked"):
        return case.ok if case.operation.split()[1] in ("/livez", "/readyz", "/startupz") else 401
    needs = set(case.need.split("+"))
    if needs <= FREE or needs <= CALLERS[caller]:
        return case.ok
    return 401 if caller == "anonymous" else 403


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under the repositories with a hash of its content (uploads included)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.joinpath("matrix").rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.operation}-{c.need}")
def test_each_endpoint_for_each_caller(guarded: LiveServer, case: Case, caller: str) -> None:
    with _client(guarded, "admin") as admin, _client(guarded, caller) as client:
        seeded = _seed(admin)
        before = _snapshot(guarded.root)
        response = case.call(client, seeded)
        expected = _expected(case, caller)
        assert response.status_code == expected, (response.status_code, response.text)
        if expected == 401:
            assert response.headers["WWW-Authenticate"] == 'Basic realm="matrix"'
        if expected in (401, 403) and case.operation.split()[0] != "HEAD":
            code = "UNAUTHORIZED" if expected == 401 else "DENIED"
            assert [e["code"] for e in response.json()["errors"]] == [code]
        if expected in (401, 403):
            assert _snapshot(guarded.root) == before


@pytest.fixture(scope="module")
def token_guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A registry trusting a token signer, and a token of that signer that expired."""
    directory = tmp_path_factory.mktemp("token-guarded")
    signer = TokenServer(directory / "signer")
    everything = Access("repository", "*", frozenset({"*"}))
    expired = signer.issue("admin", [everything], expires_in=-120)
    extra = {
        "http": {"auth": {"bearer": signer.config().model_dump()}},
        "extensions": {"mgmt": {}, "search": {}, "metrics": {}, "trust": TRUST},
    }
    with live_server(directory, extra) as live:
        yield live, expired


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.operation}-{c.need}")
def test_each_endpoint_refuses_an_expired_token(
    token_guarded: tuple[LiveServer, str], case: Case
) -> None:
    server, expired = token_guarded
    nothing = Seeded(
        "matrix/none", {"mediaType": "x/y"}, EMPTY_DIGEST, EMPTY_DIGEST, UPLOAD, "matrix/other"
    )
    headers = {"Authorization": f"Bearer {expired}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        response = case.call(client, nothing)
    if case.operation.split()[1] in ("/livez", "/readyz", "/startupz"):
        assert response.status_code == case.ok
        return
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


EMPTY_DIGEST = sha256(b"")
UPLOAD = "/v2/matrix/none/blobs/uploads/" + "0" * 32


def test_the_matrix_covers_every_operation(guarded: LiveServer) -> None:
    spec = httpx.get(f"{guarded.url}/openapi.json").json()
    declared = {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "head", "put", "post", "patch", "delete")
    }
    covered = {case.operation for case in CASES}
    assert declared - covered == set()
    assert covered - declared == {"GET /metrics"}  # a route outside the spec


def test_catalog_and_search_list_only_what_the_caller_may_read(guarded: LiveServer) -> None:
    with _client(guarded, "admin") as admin:
        seeded = _seed(admin)
    with _client(guarded, "anonymous") as anonymous:
        assert anonymous.get("/v2/_catalog").json() == {"repositories": []}
        found = anonymous.post("/v2/_zot/ext/search", json={"query": SEARCH}).json()
        assert found["data"]["ImageList"]["Results"] == []
    with _client(guarded, "reader") as reader:
        assert seeded.repo in reader.get("/v2/_catalog").json()["repositories"]
