"""TLS client certificates (mTLS) as zot does them: with ``http.tls.cacert`` a client may
present a certificate, which the handshake verifies against that CA, and whose identity
(``http.auth.mtls``) is then the user; a client without one is anonymous and may log in
otherwise.

First the identity a certificate names, the configuration and the order of methods in the
Guard, then live registries over HTTPS (one worker, and two)."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from pydantic import ValidationError

from ocireg.auth.guard import Guard, PasswordMethod
from ocireg.auth.mtls import identity_from_certificate
from ocireg.auth.policy import AccessControl
from ocireg.auth.policyconfig import AccessControlConfig
from ocireg.auth.settings import MTLSConfig
from ocireg.config import Config
from ocireg.errors import RegistryError
from ocireg.tls import tls_extension
from tests.auth.test_auth_http import write_htpasswd
from tests.certs import Issued, issue, issue_server, make_ca
from tests.liveserver import LiveServer, live_server
from tests.oci import image_manifest, put_manifest

SPIFFE = "spiffe://example.org/workload/(.*)"


@dataclass
class PKI:
    ca: Issued
    server: Issued
    alice: Issued  # CN alice, nothing else
    builder: Issued  # CN not-builder, URI SAN spiffe://example.org/workload/builder
    carol: Issued  # CN not-carol, email SANs carol@example.org then c@example.org
    many: Issued  # O=Example, CN many, two of each SAN kind
    nameless: Issued  # no subject at all, one DNS SAN
    rogue: Issued  # CN alice, signed by another CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory, "ca")
    uri = x509.UniformResourceIdentifier
    return PKI(
        ca=ca,
        server=issue_server(ca, directory),
        alice=issue(ca, directory, "alice", "alice"),
        builder=issue(
            ca, directory, "builder", "not-builder", [uri("spiffe://example.org/workload/builder")]
        ),
        carol=issue(
            ca,
            directory,
            "carol",
            "not-carol",
            [x509.RFC822Name("carol@example.org"), x509.RFC822Name("c@example.org")],
        ),
        many=issue(
            ca,
            directory,
            "many",
            "many",
            [
                x509.DNSName("one.example.org"),
                x509.DNSName("two.example.org"),
                x509.RFC822Name("first@example.org"),
                x509.RFC822Name("second@example.org"),
                uri("https://example.org/first"),
                uri("spiffe://example.org/workload/second"),
            ],
            organization="Example",
        ),
        nameless=issue(ca, directory, "nameless", None, [x509.DNSName("host.example.org")]),
        rogue=issue(make_ca(directory, "other-ca"), directory, "rogue", "alice"),
    )


def _mtls(**options: Any) -> MTLSConfig:
    return MTLSConfig.model_validate(options)


# -- the identity a certificate names ------------------------------------------------------


def test_the_common_name_by_default(pki: PKI) -> None:
    assert identity_from_certificate(pki.alice.der, None) == "alice"
    assert identity_from_certificate(pki.alice.pem, None) == "alice"
    assert identity_from_certificate(pki.alice.der, _mtls()) == "alice"
    assert identity_from_certificate(pki.nameless.der, None) is None


def test_the_subject_is_the_whole_distinguished_name_most_specific_first(pki: PKI) -> None:
    subject = _mtls(identityAttributes=["Subject"])
    assert identity_from_certificate(pki.many.der, subject) == "CN=many,O=Example"
    assert identity_from_certificate(pki.nameless.der, subject) is None  # empty: nobody


@pytest.mark.parametrize(
    ("attribute", "index", "expected"),
    [
        ("Email", None, "first@example.org"),
        ("Email", 0, "first@example.org"),
        ("Email", 1, "second@example.org"),
        ("Email", 2, None),
        ("DNSName", None, "one.example.org"),
        ("DNSName", 1, "two.example.org"),
        ("DNSName", 2, None),
        ("URI", None, "https://example.org/first"),
        ("URI", 1, "spiffe://example.org/workload/second"),
        ("URI", 2, None),
    ],
)
def test_subject_alternative_names_by_index(
    pki: PKI, attribute: str, index: int | None, expected: str | None
) -> None:
    key = {"Email": "emailSanIndex", "DNSName": "dnsSanIndex", "URI": "uriSanIndex"}[attribute]
    config = _mtls(identityAttributes=[attribute], **{key: index})
    assert identity_from_certificate(pki.many.der, config) == expected


def test_the_uri_pattern_keeps_its_first_group(pki: PKI) -> None:
    spiffe = _mtls(identityAttributes=["URI"], uriSanPattern=SPIFFE)
    assert identity_from_certificate(pki.builder.der, spiffe) == "builder"
    # the first URI of "many" is not a SPIFFE workload: it names nobody
    assert identity_from_certificate(pki.many.der, spiffe) is None
    second = _mtls(identityAttributes=["URI"], uriSanPattern=SPIFFE, uriSanIndex=1)
    assert identity_from_certificate(pki.many.der, second) == "second"
    assert identity_from_certificate(pki.alice.der, spiffe) is None  # no URI at all


def test_the_first_attribute_that_names_someone_wins(pki: PKI) -> None:
    chain = _mtls(identityAttributes=["URI", "Email", "CommonName"], uriSanPattern=SPIFFE)
    assert identity_from_certificate(pki.builder.der, chain) == "builder"
    assert identity_from_certificate(pki.carol.der, chain) == "carol@example.org"
    assert identity_from_certificate(pki.alice.der, chain) == "alice"
    reverse = _mtls(identityAttributes=["CommonName", "URI"], uriSanPattern=SPIFFE)
    assert identity_from_certificate(pki.builder.der, reverse) == "not-builder"
    assert identity_from_certificate(pki.nameless.der, reverse) is None


def test_attribute_names_take_zots_aliases_in_any_case() -> None:
    config = _mtls(identityAttributes=["cn", "DN", "rfc822Name", "url", "DNS", "commonname"])
    assert config.identityAttributes == [
        "CommonName",
        "Subject",
        "Email",
        "URI",
        "DNSName",
        "CommonName",
    ]
    assert _mtls(identityAttributes=[]).identityAttributes == ["CommonName"]


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"identityAttributes": ["CommonName", "Serial"]}, "unsupported identity attribute"),
        ({"uriSanPattern": "spiffe://[a"}, "not a regular expression"),
        ({"uriSanPattern": "spiffe://.*"}, "needs a capture group"),
        ({"uriSanIndex": -1}, "greater than or equal to 0"),
        ({"emailSanIndex": -1}, "greater than or equal to 0"),
        ({"dnsSanIndex": -1}, "greater than or equal to 0"),
        ({"sanIndex": 0}, "Extra inputs"),
    ],
)
def test_bad_mtls_options_are_refused(options: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        MTLSConfig.model_validate(options)


# -- configuration -------------------------------------------------------------------------

NAMED = {"repositories": {"**": {"policies": [{"users": ["alice"], "actions": ["read"]}]}}}
TLS = {"cert": "server.crt", "key": "server.key"}


def _config(http: dict[str, Any]) -> Config:
    return Config.model_validate({"storage": {"rootDirectory": "/d"}, "http": http})


def test_client_certificates_alone_authenticate_named_users() -> None:
    config = _config({"tls": {**TLS, "cacert": "ca.crt"}, "accessControl": NAMED})
    assert config.http.authenticating()
    with pytest.raises(ValidationError, match=r"http\.tls\.cacert"):
        _config({"tls": TLS, "accessControl": NAMED})


def test_mtls_options_without_a_ca_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"auth\.mtls: client certificates need"):
        _config({"tls": TLS, "auth": {"mtls": {"identityAttributes": ["URI"]}}})
    with_ca = {
        "tls": {**TLS, "cacert": "ca.crt"},
        "auth": {"mtls": {"identityAttributes": ["URI"]}},
    }
    assert _config(with_ca).http.auth is not None


# -- the Guard: which method decides ---------------------------------------------------------


def _guard(passwords: bool = True, certificates: bool = True) -> Guard:
    def check(user: str, password: str) -> list[str] | None:
        return [] if (user, password) == ("bob", "bob-pw") else None

    def named(certificate: str) -> str | None:
        return certificate.removeprefix("cert:") or None

    return Guard(
        AccessControl(None, True),
        "realm",
        [PasswordMethod("htpasswd", check)] if passwords else [],
        certificates=named if certificates else None,
    )


def _basic(user: str, password: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", b"Basic " + base64.b64encode(f"{user}:{password}".encode()))]


def _identify(guard: Guard, headers: list[tuple[bytes, bytes]], cert: str | None) -> Any:
    try:
        identity = asyncio.run(guard.identify(headers, cert))
    except RegistryError as exc:
        return exc.http_status
    return (identity.user, identity.method)


def test_a_certificate_names_the_user_without_an_authorization_header() -> None:
    assert _identify(_guard(), [], "cert:alice") == ("alice", "mtls")
    assert _identify(_guard(), [], None) == (None, "anonymous")
    assert _identify(_guard(), [], "cert:") == 401  # verified, but names nobody


def test_an_authorization_header_decides_alone() -> None:
    assert _identify(_guard(), _basic("bob", "bob-pw"), "cert:alice") == ("bob", "htpasswd")
    # a wrong password is a failed login, not a reason to fall back on the certificate
    assert _identify(_guard(), _basic("bob", "wrong"), "cert:alice") == 401


def test_a_header_no_method_checks_gives_way_to_the_certificate() -> None:
    certificates_only = _guard(passwords=False)
    assert _identify(certificates_only, _basic("bob", "bob-pw"), "cert:alice") == (
        "alice",
        "mtls",
    )
    assert _identify(certificates_only, _basic("bob", "bob-pw"), None) == 401


def test_a_certificates_user_gets_the_groups_access_control_lists() -> None:
    groups = AccessControlConfig.model_validate({"groups": {"ci": {"users": ["builder"]}}})
    guard = Guard(AccessControl(groups, True), "realm", certificates=lambda _: "builder")
    identity = asyncio.run(guard.identify([], "any certificate"))
    assert identity.groups == {"ci"}


def test_without_certificate_authentication_a_certificate_is_ignored() -> None:
    assert _identify(_guard(certificates=False), [], "cert:alice") == (None, "anonymous")


# -- the ASGI TLS extension ------------------------------------------------------------------


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLObject:
    """A TLS handshake in memory; the server's end of it."""
    bios = [ssl.MemoryBIO() for _ in range(4)]
    server_end = server.wrap_bio(bios[0], bios[1], server_side=True)
    client_end = client.wrap_bio(bios[2], bios[3], server_hostname="127.0.0.1")
    done = {"server": False, "client": False}
    for _ in range(10):
        for name, end in (("client", client_end), ("server", server_end)):
            try:
                end.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
        bios[0].write(bios[3].read())  # client to server
        bios[2].write(bios[1].read())  # server to client
        if all(done.values()):
            return server_end
    raise AssertionError("the handshake did not finish")


def _server_context(pki: PKI, verify: ssl.VerifyMode) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*pki.server.pair)
    context.load_verify_locations(pki.ca.cert_path)
    context.verify_mode = verify
    return context


def _client_context(pki: PKI, client: Issued | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca.cert_path)
    if client is not None:
        context.load_cert_chain(*client.pair)
    return context


def test_the_extension_carries_the_verified_certificate(pki: PKI) -> None:
    server_end = _handshake(_server_context(pki, ssl.CERT_OPTIONAL), _client_context(pki, pki.many))
    extension = tls_extension(server_end)
    assert extension["client_cert_chain"] == [pki.many.pem]
    assert extension["client_cert_name"] == "CN=many,O=Example"
    assert extension["client_cert_error"] is None
    assert extension["tls_version"] == 0x0304


def test_the_extension_has_no_certificate_when_none_was_sent_or_asked_for(pki: PKI) -> None:
    anonymous = _handshake(_server_context(pki, ssl.CERT_OPTIONAL), _client_context(pki, None))
    assert tls_extension(anonymous)["client_cert_chain"] == []
    assert tls_extension(anonymous)["client_cert_name"] is None
    unasked = _handshake(_server_context(pki, ssl.CERT_NONE), _client_context(pki, pki.alice))
    assert tls_extension(unasked)["client_cert_chain"] == []


# -- live registries -------------------------------------------------------------------------

ACCESS_CONTROL = {
    "repositories": {
        "**": {
            "policies": [
                {
                    "users": ["alice", "builder", "carol@example.org", "bob"],
                    "actions": ["read", "create"],
                }
            ]
        }
    }
}


def _tls(pki: PKI) -> dict[str, str]:
    return {
        "cert": str(pki.server.cert_path),
        "key": str(pki.server.key_path),
        "cacert": str(pki.ca.cert_path),
    }


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[LiveServer]:
    """HTTPS with client certificates named by URI (SPIFFE), then email, then CommonName; and
    htpasswd for bob."""
    directory = tmp_path_factory.mktemp("mtls-registry")
    htpasswd = write_htpasswd(directory / "htpasswd", {"bob": "bob-pw"})
    extra = {
        "http": {
            "tls": _tls(pki),
            "realm": "mtls-realm",
            "auth": {
                "htpasswd": {"path": str(htpasswd)},
                "mtls": {
                    "identityAttributes": ["URI", "Email", "CommonName"],
                    "uriSanPattern": SPIFFE,
                },
            },
            "accessControl": ACCESS_CONTROL,
        }
    }
    with live_server(directory, extra) as live:
        yield live


def _client(
    server: LiveServer,
    pki: PKI,
    client: Issued | None,
    tls_version: ssl.TLSVersion | None = None,
    **options: Any,
) -> httpx.Client:
    context = _client_context(pki, client)
    if tls_version is not None:
        context.maximum_version = tls_version
    return httpx.Client(base_url=server.url, verify=context, timeout=30, **options)


def _push_and_pull(client: httpx.Client, repo: str) -> None:
    manifest = image_manifest(client, repo, [f"layer of {repo}".encode()])
    digest = put_manifest(client, repo, "v1", manifest).headers["Docker-Content-Digest"]
    pulled = client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": manifest["mediaType"]})
    assert pulled.status_code == 200
    assert pulled.headers["Docker-Content-Digest"] == digest


def _users(server: LiveServer, path: str, at_least: int = 1) -> list[str | None]:
    """The ``user`` of each request line for ``path``, once there are ``at_least`` (a line
    is written just after its response went out)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
        users = [line["user"] for line in lines if line.get("path") == path]
        if len(users) >= at_least or time.monotonic() > deadline:
            return users
        time.sleep(0.05)


def test_alice_pushes_and_pulls_with_her_certificate(registry: LiveServer, pki: PKI) -> None:
    with _client(registry, pki, pki.alice) as alice:
        _push_and_pull(alice, "alice/app")
        assert alice.get("/v2/_catalog").json()["repositories"] == ["alice/app"]
    assert set(_users(registry, "/v2/alice/app/manifests/v1")) == {"alice"}


def test_without_a_certificate_the_caller_is_anonymous(registry: LiveServer, pki: PKI) -> None:
    with _client(registry, pki, None) as anonymous:
        answer = anonymous.get("/v2/anonymous/app/tags/list")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="mtls-realm"'
    assert _users(registry, "/v2/anonymous/app/tags/list") == [None]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_certificate_from_another_ca_is_refused_in_the_handshake(
    registry: LiveServer, pki: PKI, version: ssl.TLSVersion
) -> None:
    path = f"/v2/rogue-{version.name}/tags/list"
    # TLS 1.2: the server verifies the client within the handshake, which fails (an SSL
    # error on connecting). TLS 1.3 finishes the client's side of the handshake first; the
    # server then drops the connection without an answer (a read or protocol error).
    tls12 = version is ssl.TLSVersion.TLSv1_2
    expected = httpx.ConnectError if tls12 else httpx.TransportError
    with _client(registry, pki, pki.rogue, version) as rogue, pytest.raises(expected) as refused:
        rogue.get(path)
    assert "SSL" in str(refused.value) or not tls12
    with _client(registry, pki, pki.alice, version) as alice:  # the same TLS, a good cert
        assert alice.get(f"{path}-alice").status_code == 404
    assert _users(registry, f"{path}-alice") == ["alice"]
    assert _users(registry, path, at_least=0) == []  # the rogue never reached the registry


def test_the_uri_san_pattern_names_the_workload(registry: LiveServer, pki: PKI) -> None:
    with _client(registry, pki, pki.builder) as builder:
        _push_and_pull(builder, "builder/app")
    assert set(_users(registry, "/v2/builder/app/manifests/v1")) == {"builder"}


def test_an_email_san_names_the_user(registry: LiveServer, pki: PKI) -> None:
    with _client(registry, pki, pki.carol) as carol:
        _push_and_pull(carol, "carol/app")
    assert set(_users(registry, "/v2/carol/app/manifests/v1")) == {"carol@example.org"}


def test_basic_auth_works_over_the_same_tls_and_wins_over_a_certificate(
    registry: LiveServer, pki: PKI
) -> None:
    with _client(registry, pki, None, auth=("bob", "bob-pw")) as bob:
        _push_and_pull(bob, "bob/app")
    with _client(registry, pki, pki.alice, auth=("bob", "bob-pw")) as both:
        assert both.get("/v2/bob/app/tags/list").status_code == 200
    assert _users(registry, "/v2/bob/app/tags/list") == ["bob"]
    with _client(registry, pki, pki.alice, auth=("bob", "wrong")) as wrong:
        assert wrong.get("/v2/bob/app/manifests/v1").status_code == 401


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, pki: PKI) -> Iterator[LiveServer]:
    """Only tls.cacert (no http.auth): CommonName identities, two worker processes."""
    extra = {"http": {"tls": _tls(pki), "workers": 2, "accessControl": ACCESS_CONTROL}}
    with live_server(tmp_path_factory.mktemp("mtls-workers"), extra) as live:
        yield live


def test_two_workers_both_name_the_certificates_user(two_workers: LiveServer, pki: PKI) -> None:
    with _client(two_workers, pki, pki.alice) as alice:
        _push_and_pull(alice, "alice/workers")

    def pull(_: int) -> int:
        # A fresh connection each time so the kernel may hand it to either worker.
        with _client(two_workers, pki, pki.alice) as client:
            return client.get("/v2/alice/workers/tags/list").status_code

    def pids() -> set[int]:
        lines = [json.loads(line) for line in two_workers.log_lines() if line.startswith("{")]
        return {line["pid"] for line in lines if line.get("path") == "/v2/alice/workers/tags/list"}

    with ThreadPoolExecutor(16) as pool:
        # Which worker accepts is the kernel's choice: rounds until both have served one.
        for _ in range(20):
            assert set(pool.map(pull, range(32))) == {200}
            if len(pids()) == 2:
                break
    assert len(pids()) == 2, "both workers should have served alice"
    assert set(_users(two_workers, "/v2/alice/workers/tags/list")) == {"alice"}
    with _client(two_workers, pki, None) as anonymous:
        assert anonymous.get("/v2/alice/workers/tags/list").status_code == 401
    with _client(two_workers, pki, pki.builder) as builder:  # CN not-builder: no policy
        assert builder.get("/v2/alice/workers/tags/list").status_code == 403
