"""Real clients against ocireg with authentication on.

skopeo (Debian) and oras (the PyPI SDK) push, pull, list and delete with Basic credentials that
ocireg checks against htpasswd and zot's accessControl, and with registry tokens: there the
client must do the token dance itself (a 401 challenge, GET the realm with Basic credentials,
then Bearer), and the token server records what each client asked for.

What each client manages, as these tests pin it down:

* skopeo: Basic and Bearer, every operation; it asks the token server for exactly the scope
  each challenge names (pull, pull and push, delete).
* oras-py: Basic only with its ``basic`` backend (the default ``token`` backend takes a Basic
  realm for a token server's URL). With tokens it pulls, and pushes with a token it is given;
  it cannot push through the token flow on its own: it keeps the first token it gets (pull,
  from the HEAD that checks whether a blob exists) and answers the registry's
  ``insufficient_scope`` challenge for push by sending that same token again.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from ocireg.auth.bearer import Access
from ocireg.conformance.layout import build_multiarch_layout
from tests.auth.registries import EVERY_ACTION, htpasswd_registry, token_registry
from tests.auth.tokenserver import TokenServer
from tests.e2e.test_skopeo import run
from tests.liveserver import LiveServer
from tests.oci import EMPTY, OCI_MANIFEST, descriptor, push_blob, put_manifest
from tests.tools import missing

pytestmark = pytest.mark.e2e

USERS = {"ci": "ci-pw", "eve": "eve-pw"}
CI = "--creds=ci:ci-pw"
NO_TLS = "--tls-verify=false"
TITLE = "org.opencontainers.image.title"


def refused(*args: str) -> subprocess.CompletedProcess[str]:
    """Run a command that must fail; its result, for the test to read why."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, f"{' '.join(args)} succeeded:\n{result.stdout}"
    return result


def requests_logged(server: LiveServer) -> list[dict[str, Any]]:
    """The registry's request log lines."""
    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    return [line for line in lines if line.get("msg") == "request"]


# -- registries ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """htpasswd users; ci may do anything under ci/**, eve may log in but do nothing."""
    access = {"repositories": {"ci/**": {"policies": [{"users": ["ci"], "actions": EVERY_ACTION}]}}}
    with htpasswd_registry(tmp_path_factory.mktemp("basic-registry"), USERS, access) as live:
        with httpx.Client(base_url=live.url, auth=("ci", "ci-pw")) as ci:
            _push_artifact(ci, "ci/seeded", b"seeded content")
        yield live


def _ci_policy(subject: str, requested: Access) -> list[str]:
    """The token server's policy: ci may pull, push and delete under ci/, nobody else a thing."""
    if subject == "ci" and requested.name.startswith("ci/"):
        return ["pull", "push", "delete"]
    return []


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    directory = tmp_path_factory.mktemp("token-server")
    with TokenServer(directory, users={"ci": "ci-pw"}, policy=_ci_policy) as server:
        yield server


@pytest.fixture(scope="module")
def bearer_registry(
    tmp_path_factory: pytest.TempPathFactory, tokens: TokenServer
) -> Iterator[LiveServer]:
    with token_registry(tmp_path_factory.mktemp("bearer-registry"), tokens) as live:
        yield live


def asked(tokens: TokenServer) -> set[tuple[str, str]]:
    """(subject, scope) of every token request answered since the last call."""
    seen = {(request.subject, scope) for request in tokens.requests for scope in request.scopes}
    tokens.requests.clear()
    return seen


def _push_artifact(client: httpx.Client, repo: str, payload: bytes, tag: str = "v1") -> None:
    """An oras-style artifact (one titled layer, empty config), pushed with plain HTTP."""
    push_blob(client, repo, b"{}")
    push_blob(client, repo, payload)
    layer = descriptor("application/octet-stream", payload, annotations={TITLE: "artifact.bin"})
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.ocireg.test",
        "config": EMPTY,
        "layers": [layer],
    }
    put_manifest(client, repo, tag, manifest)


# -- skopeo ----------------------------------------------------------------------------------


def _copy_inspect_list_delete(skopeo: str, host: str, repo: str, tmp_path: Path) -> None:
    """The round trip both auth schemes must carry, every command with ci's credentials."""
    source, back = tmp_path / "source", tmp_path / "back"
    index_digest = build_multiarch_layout(source, "v1")
    remote = f"docker://{host}/{repo}"
    run(skopeo, "copy", "--all", "--dest-tls-verify=false", "--dest-creds=ci:ci-pw",
        f"oci:{source}:v1", f"{remote}:v1")  # fmt: skip
    digest = run(skopeo, "inspect", NO_TLS, CI, "--format", "{{.Digest}}", f"{remote}:v1")
    assert digest.strip() == index_digest
    raw = json.loads(run(skopeo, "inspect", NO_TLS, CI, "--raw", f"{remote}:v1"))
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert json.loads(run(skopeo, "list-tags", NO_TLS, CI, remote))["Tags"] == ["v1"]
    run(skopeo, "copy", "--all", "--src-tls-verify=false", "--src-creds=ci:ci-pw",
        f"{remote}:v1", f"oci:{back}:v1")  # fmt: skip
    assert json.loads((back / "index.json").read_text())["manifests"][0]["digest"] == index_digest
    run(skopeo, "delete", NO_TLS, CI, f"{remote}:v1")
    assert json.loads(run(skopeo, "list-tags", NO_TLS, CI, remote))["Tags"] == []


def test_skopeo_with_basic_credentials(
    skopeo: str, basic_registry: LiveServer, tmp_path: Path
) -> None:
    _copy_inspect_list_delete(skopeo, basic_registry.host, "ci/skopeo", tmp_path)
    writes = [
        line
        for line in requests_logged(basic_registry)
        if line.get("repo") == "ci/skopeo" and line["method"] in ("PUT", "DELETE")
    ]
    assert writes and {line["user"] for line in writes} == {"ci"}


def test_skopeo_pushes_with_credentials_where_anonymous_callers_may_read(
    skopeo: str, tmp_path: Path
) -> None:
    """/v2/ challenges even when anonymous reads are allowed: otherwise skopeo would never
    send its credentials, and its push would fail (as it does against zot)."""
    access = {
        "repositories": {
            "public/**": {
                "policies": [{"users": ["ci"], "actions": EVERY_ACTION}],
                "anonymousPolicy": ["read"],
            }
        }
    }
    with htpasswd_registry(tmp_path / "registry", USERS, access) as live:
        source = tmp_path / "source"
        index_digest = build_multiarch_layout(source, "v1")
        remote = f"docker://{live.host}/public/app"
        run(skopeo, "copy", "--all", "--dest-tls-verify=false", "--dest-creds=ci:ci-pw",
            f"oci:{source}:v1", f"{remote}:v1")  # fmt: skip
        anonymous = run(skopeo, "inspect", NO_TLS, "--format", "{{.Digest}}", f"{remote}:v1")
        assert anonymous.strip() == index_digest
        refused(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{source}:v1",
                f"{remote}:v2")  # fmt: skip


@pytest.mark.parametrize("creds", [None, "ci:not-the-password", "mallory:ci-pw"])
def test_skopeo_without_valid_credentials_is_unauthorized(
    skopeo: str, basic_registry: LiveServer, tmp_path: Path, creds: str | None
) -> None:
    remote = f"docker://{basic_registry.host}/ci/seeded"
    given = [f"--creds={creds}"] if creds else []
    source = tmp_path / "source"
    build_multiarch_layout(source, "v1")
    for command in (
        ["inspect", NO_TLS, *given, f"{remote}:v1"],
        ["list-tags", NO_TLS, *given, remote],
        ["copy", "--all", "--dest-tls-verify=false",
         *([f"--dest-creds={creds}"] if creds else []), f"oci:{source}:v1", f"{remote}:v2"],
    ):  # fmt: skip
        result = refused(skopeo, *command)
        assert result.returncode == 1, result.stderr  # skopeo's exit status for a fatal error
        assert "unauthorized" in result.stderr.lower() or "401" in result.stderr, result.stderr
    with httpx.Client(base_url=basic_registry.url, auth=("ci", "ci-pw")) as ci:
        assert ci.get("/v2/ci/seeded/tags/list").json()["tags"] == ["v1"]  # nothing was pushed


def test_skopeo_with_credentials_but_no_rights_is_denied(
    skopeo: str, basic_registry: LiveServer
) -> None:
    remote = f"docker://{basic_registry.host}/ci/seeded"
    for command in (["inspect", NO_TLS, "--creds=eve:eve-pw", f"{remote}:v1"],
                    ["list-tags", NO_TLS, "--creds=eve:eve-pw", remote]):  # fmt: skip
        result = refused(skopeo, *command)
        assert result.returncode == 1
        # authenticated, then refused: 403 DENIED, not a 401 asking for credentials again
        assert "denied" in result.stderr.lower() or "403" in result.stderr, result.stderr
        assert "unauthorized" not in result.stderr.lower(), result.stderr


def test_skopeo_does_the_token_dance(
    skopeo: str, bearer_registry: LiveServer, tokens: TokenServer, tmp_path: Path
) -> None:
    asked(tokens)
    source = tmp_path / "source"
    # Content new to skopeo: its blob-info cache (/var/lib/containers/cache for root, shared by
    # every test) may know these blobs from a repository an earlier test used on a port this
    # registry now has, and it would then ask for a token to mount from there.
    build_multiarch_layout(source, "v1", salt=secrets.token_hex(8))
    remote = f"docker://{bearer_registry.host}/ci/tokens"
    run(skopeo, "copy", "--all", "--dest-tls-verify=false", "--dest-creds=ci:ci-pw",
        f"oci:{source}:v1", f"{remote}:v1")  # fmt: skip
    assert asked(tokens) == {("ci", "repository:ci/tokens:pull,push")}
    run(skopeo, "inspect", NO_TLS, CI, "--raw", f"{remote}:v1")
    assert asked(tokens) == {("ci", "repository:ci/tokens:pull")}
    assert json.loads(run(skopeo, "list-tags", NO_TLS, CI, remote))["Tags"] == ["v1"]
    assert asked(tokens) == {("ci", "repository:ci/tokens:pull")}
    run(skopeo, "delete", NO_TLS, CI, f"{remote}:v1")
    deleting = asked(tokens)
    # skopeo 1.9 first asks for "*", which the policy does not grant; the registry's challenge
    # then names the delete action, and skopeo asks for that.
    assert ("ci", "repository:ci/tokens:delete") in deleting
    assert {subject for subject, _ in deleting} == {"ci"}
    assert json.loads(run(skopeo, "list-tags", NO_TLS, CI, remote))["Tags"] == []


def test_the_whole_round_trip_with_tokens(
    skopeo: str, bearer_registry: LiveServer, tokens: TokenServer, tmp_path: Path
) -> None:
    _copy_inspect_list_delete(skopeo, bearer_registry.host, "ci/round-trip", tmp_path)
    assert {subject for subject, _ in asked(tokens)} == {"ci"}


@pytest.mark.parametrize("creds", [None, "ci:not-the-password"])
def test_skopeo_without_a_token_is_unauthorized(
    skopeo: str, bearer_registry: LiveServer, tokens: TokenServer, creds: str | None
) -> None:
    with httpx.Client(base_url=bearer_registry.url) as client:
        grant = tokens.issue("ci", [Access("repository", "ci/held", frozenset({"pull", "push"}))])
        client.headers["Authorization"] = f"Bearer {grant}"
        _push_artifact(client, "ci/held", b"held content")
    asked(tokens)
    remote = f"docker://{bearer_registry.host}/ci/held"
    result = refused(skopeo, "list-tags", NO_TLS, *([f"--creds={creds}"] if creds else []), remote)
    assert result.returncode == 1
    assert "unauthorized" in result.stderr.lower() or "401" in result.stderr, result.stderr
    if creds is None:  # an anonymous token, granting nothing
        assert asked(tokens) == {("", "repository:ci/held:pull")}
    else:  # the token server refused the password: no token at all
        assert asked(tokens) == set()


# -- oras (the PyPI SDK) -------------------------------------------------------------------


@pytest.fixture
def oras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The oras SDK, in a home of its own: it reads ~/.docker/config.json for credentials."""
    try:
        import oras.client
    except ImportError:
        missing("the oras SDK is not installed: pip install oras")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return oras


def oras_client(oras: ModuleType, server: LiveServer, password: str, backend: str) -> Any:
    client = oras.client.OrasClient(hostname=server.host, insecure=True, auth_backend=backend)
    client.auth.set_basic_auth("ci", password)  # not login(): that writes ~/.docker/config.json
    return client


@pytest.mark.parametrize("chunked", [False, True], ids=["monolithic", "chunked"])
def test_oras_pushes_and_pulls_with_basic_credentials(
    oras: ModuleType, basic_registry: LiveServer, tmp_path: Path, chunked: bool
) -> None:
    payload = os.urandom(256 * 1024 + 3)
    Path("artifact.bin").write_bytes(payload)
    target = f"{basic_registry.host}/ci/oras-basic:{int(chunked)}"
    client = oras_client(oras, basic_registry, "ci-pw", "basic")
    pushed = client.push(
        files=["artifact.bin"], target=target, do_chunked=chunked, chunk_size=100 * 1024
    )
    assert pushed.status_code == 201
    pulled = client.pull(target=target, outdir=str(tmp_path / "out"))
    assert [Path(p).read_bytes() for p in pulled] == [payload]
    manifest = f"/v2/ci/oras-basic/manifests/{int(chunked)}"
    pushes = [
        (line["user"], line["status"])
        for line in requests_logged(basic_registry)
        if line["method"] == "PUT" and line["path"] == manifest
    ]
    assert pushes == [(None, 401), ("ci", 201)]  # oras-py sends credentials when challenged


def test_oras_with_a_wrong_password_is_unauthorized(
    oras: ModuleType, basic_registry: LiveServer, tmp_path: Path
) -> None:
    Path("artifact.bin").write_bytes(b"never stored")
    client = oras_client(oras, basic_registry, "not-the-password", "basic")
    with pytest.raises(ValueError, match="UNAUTHORIZED"):
        client.push(files=["artifact.bin"], target=f"{basic_registry.host}/ci/oras-refused:v1")
    with pytest.raises(ValueError, match="Unauthorized"):
        client.pull(target=f"{basic_registry.host}/ci/seeded:v1", outdir=str(tmp_path / "out"))


def test_oras_pulls_through_the_token_flow(
    oras: ModuleType, bearer_registry: LiveServer, tokens: TokenServer, tmp_path: Path
) -> None:
    payload = os.urandom(4096)
    with httpx.Client(base_url=bearer_registry.url) as client:
        grant = tokens.issue(
            "ci", [Access("repository", "ci/oras-pull", frozenset({"pull", "push"}))]
        )
        client.headers["Authorization"] = f"Bearer {grant}"
        _push_artifact(client, "ci/oras-pull", payload)
    asked(tokens)
    client = oras_client(oras, bearer_registry, "ci-pw", "token")
    pulled = client.pull(
        target=f"{bearer_registry.host}/ci/oras-pull:v1", outdir=str(tmp_path / "out")
    )
    assert [Path(p).read_bytes() for p in pulled] == [payload]
    # oras-py went to the realm itself, with ci's password, for the scope the challenge named
    assert asked(tokens) == {("ci", "repository:ci/oras-pull:pull")}


def test_oras_pushes_and_pulls_with_a_bearer_token_it_is_given(
    oras: ModuleType, bearer_registry: LiveServer, tokens: TokenServer, tmp_path: Path
) -> None:
    """What oras-py can do with tokens despite the limit below: a token with push, fetched from
    the realm beforehand (as a CI job would), carries a whole push and pull."""
    scope = "repository:ci/oras-token:pull,push"
    fetched = httpx.get(
        tokens.realm, params={"service": tokens.service, "scope": scope}, auth=("ci", "ci-pw")
    )
    assert fetched.status_code == 200, fetched.text
    payload = os.urandom(64 * 1024)
    Path("artifact.bin").write_bytes(payload)
    client = oras.client.OrasClient(hostname=bearer_registry.host, insecure=True)
    client.auth.set_token_auth(fetched.json()["token"])
    target = f"{bearer_registry.host}/ci/oras-token:v1"
    assert client.push(files=["artifact.bin"], target=target).status_code == 201
    pulled = client.pull(target=target, outdir=str(tmp_path / "out"))
    assert [Path(p).read_bytes() for p in pulled] == [payload]
    writes = [
        line["status"]
        for line in requests_logged(bearer_registry)
        if line["method"] == "PUT" and line["path"] == "/v2/ci/oras-token/manifests/v1"
    ]
    assert writes[-1] == 201


def test_oras_cannot_push_through_the_token_flow(
    oras: ModuleType, bearer_registry: LiveServer, tokens: TokenServer
) -> None:
    """A limit of oras-py (0.2.43), pinned so this fails, and says so, the day it goes."""
    Path("artifact.bin").write_bytes(b"pushed with a token")
    asked(tokens)
    client = oras_client(oras, bearer_registry, "ci-pw", "token")
    with pytest.raises(ValueError, match="insufficient scope"):
        client.push(files=["artifact.bin"], target=f"{bearer_registry.host}/ci/oras-push:v1")
    # It asked for pull (the HEAD checking for the blob) and never for push ...
    assert asked(tokens) == {("ci", "repository:ci/oras-push:pull")}
    # ... though the registry's answer to its POST with that token says what it lacks.
    answer = httpx.post(
        f"{bearer_registry.url}/v2/ci/oras-push/blobs/uploads/",
        headers={"Authorization": f"Bearer {client.auth.token}"},
    )
    assert answer.status_code == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert 'scope="repository:ci/oras-push:pull,push"' in challenge
    assert 'error="insufficient_scope"' in challenge
