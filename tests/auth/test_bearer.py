"""Bearer token verification (ocireg.auth.bearer) and the test token server it is checked with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from ocireg.auth.bearer import Access, BearerAuth, BearerConfig, Grant, TokenError, format_scope
from tests.auth.conftest import MakeTokenServer
from tests.auth.tokenserver import KeyType, TokenServer, parse_scope
from tests.certs import dsa_public_pem

PULL_PUSH = Access("repository", "team/app", frozenset({"pull", "push"}))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token put together by hand, for the forgeries PyJWT refuses to produce."""
    parts = [b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode())]
    return ".".join([*parts, b64url(signature)])


def reason(auth: BearerAuth, token: str) -> str:
    with pytest.raises(TokenError) as caught:
        auth.verify(token)
    return str(caught.value)


# -- valid tokens -------------------------------------------------------------------------------


def test_a_valid_token_grants_its_access(signer: TokenServer, auth: BearerAuth) -> None:
    catalog = Access("registry", "catalog", frozenset({"*"}))
    grant = auth.verify(signer.issue("alice", [PULL_PUSH, catalog]))
    assert grant == Grant("alice", (PULL_PUSH, catalog))
    assert grant.allows("repository", "team/app", "pull")
    assert grant.allows("repository", "team/app", "push")
    assert not grant.allows("repository", "team/app", "delete")
    assert not grant.allows("repository", "team/other", "pull")
    assert not grant.allows("registry", "team/app", "pull")
    # "*" stands for every action on its resource
    assert grant.allows("registry", "catalog", "anything")
    assert not grant.allows("registry", "other", "anything")


def test_entries_for_one_resource_add_up(signer: TokenServer, auth: BearerAuth) -> None:
    pull = Access("repository", "a", frozenset({"pull"}))
    push = Access("repository", "a", frozenset({"push"}))
    grant = auth.verify(signer.issue("bob", [pull, push]))
    assert grant.allows("repository", "a", "pull")
    assert grant.allows("repository", "a", "push")


def test_a_resource_class_is_ignored(signer: TokenServer, auth: BearerAuth) -> None:
    plugin = Access("repository(plugin)", "a", frozenset({"pull"}))
    grant = auth.verify(signer.issue("", [plugin]))
    assert grant.allows("repository", "a", "pull")
    assert grant.allows("repository(plugin)", "a", "pull")


def test_a_token_without_access_grants_nothing(signer: TokenServer, auth: BearerAuth) -> None:
    grant = auth.verify(signer.issue("", omit=["access", "sub"]))
    assert grant == Grant("", ())
    assert not grant.allows("repository", "a", "pull")


@pytest.mark.parametrize(
    ("key_type", "algorithm"),
    [
        ("rsa", "RS256"),
        ("rsa", "RS384"),
        ("rsa", "RS512"),
        ("rsa", "PS256"),
        ("rsa", "PS512"),
        ("ec", "ES256"),
        ("ec384", "ES384"),
        ("ed25519", "EdDSA"),
    ],
)
def test_every_algorithm_the_key_allows_verifies(
    tmp_path: Path, key_type: KeyType, algorithm: str
) -> None:
    server = TokenServer(tmp_path, key_type=key_type)
    token = server.issue("carol", [PULL_PUSH], algorithm=algorithm)
    assert BearerAuth(server.config()).verify(token).subject == "carol"


def test_an_audience_list_naming_the_service_is_accepted(
    signer: TokenServer, auth: BearerAuth
) -> None:
    token = signer.issue("alice", audience=["elsewhere", signer.service])
    assert auth.verify(token).subject == "alice"


def test_issuer_and_unknown_headers_are_not_checked(signer: TokenServer, auth: BearerAuth) -> None:
    # zot has no issuer setting, and kid only names a key: the configured one is used regardless.
    token = signer.issue("alice", claims={"iss": "anyone"}, headers={"kid": "unknown"})
    assert auth.verify(token).subject == "alice"


# -- time ---------------------------------------------------------------------------------------


def test_an_expired_token_is_refused(signer: TokenServer, auth: BearerAuth) -> None:
    assert reason(auth, signer.issue("alice", expires_in=-120)) == "token expired"


def test_a_token_just_past_exp_is_within_the_leeway(signer: TokenServer, auth: BearerAuth) -> None:
    assert auth.verify(signer.issue("alice", expires_in=-5)).subject == "alice"


def test_a_token_not_yet_valid_is_refused(signer: TokenServer, auth: BearerAuth) -> None:
    token = signer.issue("alice", not_before=120, expires_in=600)
    assert reason(auth, token) == "token not yet valid"


def test_a_token_valid_in_a_few_seconds_is_within_the_leeway(
    signer: TokenServer, auth: BearerAuth
) -> None:
    assert auth.verify(signer.issue("alice", not_before=5)).subject == "alice"


def test_the_leeway_is_configurable(signer: TokenServer) -> None:
    strict = BearerAuth(signer.config(), leeway=0)
    assert reason(strict, signer.issue("alice", expires_in=-5)) == "token expired"


def test_a_token_without_exp_is_refused(signer: TokenServer, auth: BearerAuth) -> None:
    assert reason(auth, signer.issue("alice", omit=["exp"])) == "token has no exp claim"


@pytest.mark.parametrize(("claim", "value"), [("exp", "4102444800"), ("nbf", "1"), ("iat", "1")])
def test_dates_in_strings_are_refused(
    signer: TokenServer, auth: BearerAuth, claim: str, value: str
) -> None:
    # PyJWT reads these through int(); each would pass its time check as a number.
    token = signer.issue("alice", claims={claim: value})
    assert reason(auth, token) == f"malformed {claim} claim"


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [True, None, [1], {"t": 1}, 1e400])
def test_dates_must_be_numbers(
    signer: TokenServer, auth: BearerAuth, claim: str, value: object
) -> None:
    token = signer.issue("alice", claims={claim: value})
    assert reason(auth, token)


# -- audience -----------------------------------------------------------------------------------


def test_a_token_for_another_service_is_refused(signer: TokenServer, auth: BearerAuth) -> None:
    assert reason(auth, signer.issue("alice", audience="other")) == "token is for another service"


def test_an_audience_list_without_the_service_is_refused(
    signer: TokenServer, auth: BearerAuth
) -> None:
    token = signer.issue("alice", audience=["other", "more"])
    assert reason(auth, token) == "token is for another service"


def test_a_token_without_audience_is_refused(signer: TokenServer, auth: BearerAuth) -> None:
    assert reason(auth, signer.issue("alice", omit=["aud"])) == "token has no aud claim"


# -- signatures and algorithms ------------------------------------------------------------------


def test_a_token_signed_by_another_key_is_refused(tmp_path: Path, auth: BearerAuth) -> None:
    stranger = TokenServer(tmp_path)
    assert reason(auth, stranger.issue("alice", [PULL_PUSH])) == "bad signature"


def test_a_tampered_payload_is_refused(signer: TokenServer, auth: BearerAuth) -> None:
    header, _, signature = signer.issue("alice", [PULL_PUSH]).split(".")
    claims = signer.claims("mallory", [PULL_PUSH])
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert reason(auth, forged) == "bad signature"


def test_an_x5c_header_does_not_bring_its_own_trust(
    tmp_path: Path, signer: TokenServer, auth: BearerAuth
) -> None:
    stranger = TokenServer(tmp_path)
    chain = [base64.b64encode(_der(stranger.cert_pem)).decode()]
    forged = stranger.issue("mallory", [PULL_PUSH], headers={"x5c": chain, "kid": signer.kid})
    assert reason(auth, forged) == "bad signature"
    # and a chain that is not the signer's does not stop a token the configured key signed
    genuine = signer.issue("alice", [PULL_PUSH], headers={"x5c": chain})
    assert auth.verify(genuine).subject == "alice"


def test_a_jwk_header_does_not_bring_its_own_trust(tmp_path: Path, auth: BearerAuth) -> None:
    stranger = TokenServer(tmp_path)
    public_key = stranger.private_key.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public_key))
    forged = stranger.issue("mallory", [PULL_PUSH], headers={"jwk": jwk})
    assert reason(auth, forged) == "bad signature"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_refused(signer: TokenServer, auth: BearerAuth, alg: str) -> None:
    token = unsigned({"typ": "JWT", "alg": alg}, signer.claims("mallory", [PULL_PUSH]))
    assert reason(auth, token) == "signature algorithm not accepted"


def test_a_token_without_alg_is_refused(signer: TokenServer, auth: BearerAuth) -> None:
    token = unsigned({"typ": "JWT"}, signer.claims("mallory", [PULL_PUSH]), b"x")
    assert reason(auth, token) == "signature algorithm not accepted"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("secret", ["cert", "public_key", "public_key_der"])
def test_hmac_with_the_public_key_as_secret_is_refused(
    signer: TokenServer, auth: BearerAuth, alg: str, secret: str
) -> None:
    # The algorithm confusion attack: everyone knows the public key, so anyone could sign this.
    keys = {
        "cert": signer.cert_pem,
        "public_key": signer.public_key_pem,
        "public_key_der": _der(signer.public_key_pem),
    }
    header = b64url(json.dumps({"typ": "JWT", "alg": alg}).encode())
    payload = b64url(json.dumps(signer.claims("mallory", [PULL_PUSH])).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    mac = hmac.new(keys[secret], f"{header}.{payload}".encode(), digest).digest()
    assert reason(auth, f"{header}.{payload}.{b64url(mac)}") == "signature algorithm not accepted"


@pytest.mark.parametrize(
    ("key_type", "foreign"), [("rsa", "ES256"), ("rsa", "EdDSA"), ("ec", "RS256"), ("ec", "ES384")]
)
def test_an_algorithm_the_key_cannot_use_is_refused(
    tmp_path: Path, key_type: KeyType, foreign: str
) -> None:
    server = TokenServer(tmp_path, key_type=key_type)
    token = unsigned({"typ": "JWT", "alg": foreign}, server.claims("a", []), b"sig")
    assert reason(BearerAuth(server.config()), token) == "signature algorithm not accepted"


# -- malformed tokens and claims ----------------------------------------------------------------


@pytest.mark.parametrize(
    "access",
    [
        "repository:team/app:pull",
        {"type": "repository", "name": "team/app", "actions": ["pull"]},
        42,
        ["repository:team/app:pull"],
        [None],
        [{"name": "team/app", "actions": ["pull"]}],
        [{"type": "repository", "actions": ["pull"]}],
        [{"type": 1, "name": "team/app", "actions": ["pull"]}],
        [{"type": "repository", "name": ["team/app"], "actions": ["pull"]}],
        [{"type": "repository", "name": "team/app", "actions": "pull"}],
        [{"type": "repository", "name": "team/app", "actions": {"pull": True}}],
        [{"type": "repository", "name": "team/app", "actions": ["pull", 1]}],
        [{"type": "repository", "name": "team/app", "actions": [["pull"]]}],
    ],
)
def test_a_malformed_access_claim_is_a_token_error(
    signer: TokenServer, auth: BearerAuth, access: object
) -> None:
    token = signer.issue("alice", claims={"access": access})
    assert reason(auth, token) == "malformed access claim"


def test_null_access_and_null_actions_grant_nothing(signer: TokenServer, auth: BearerAuth) -> None:
    # What a Go token server writes for an empty grant: nil slices marshal as null.
    assert auth.verify(signer.issue("a", claims={"access": None})).access == ()
    entry = {"type": "repository", "name": "team/app", "actions": None}
    grant = auth.verify(signer.issue("a", claims={"access": [entry]}))
    assert grant.access == (Access("repository", "team/app", frozenset()),)
    assert not grant.allows("repository", "team/app", "pull")


@pytest.mark.parametrize("subject", [1, None, ["alice"], {"name": "alice"}])
def test_a_malformed_subject_is_a_token_error(
    signer: TokenServer, auth: BearerAuth, subject: object
) -> None:
    token = signer.issue("", claims={"sub": subject})
    assert reason(auth, token) in {"malformed sub claim", "malformed token"}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "....",
        "é.é.é",
        "eyJhbGciOiJSUzI1NiJ9.!!!.sig",
        unsigned({"alg": "RS256"}, {"aud": "x"})[:-1] + "%",
        b64url(b"[1]") + ".e30.c2ln",
        b64url(b"{" * 5000) + ".e30.c2ln",
    ],
)
def test_garbage_is_a_token_error(auth: BearerAuth, token: str) -> None:
    assert reason(auth, token)


@pytest.mark.parametrize(
    "payload",
    [
        b"[1, 2]",
        b'"a string"',
        b"not json",
        b"\xff\xfe",
        b'{"exp": 1e400, "aud": "ocireg-test"}',
        b'{"exp": NaN, "aud": "ocireg-test"}',
        b'{"exp": Infinity, "aud": "ocireg-test"}',
        b'{"exp": 99999999999, "aud": "ocireg-test", "access": ' + b"[" * 100_000 + b"}",
    ],
)
def test_a_signed_but_malformed_payload_is_a_token_error(
    signer: TokenServer, auth: BearerAuth, payload: bytes
) -> None:
    assert reason(auth, signer.sign(payload))


def test_reasons_do_not_echo_the_token(signer: TokenServer, auth: BearerAuth) -> None:
    token = unsigned({"alg": "<script>alert(1)</script>"}, signer.claims("a", []), b"x")
    assert "script" not in reason(auth, token)


# -- the configured key -------------------------------------------------------------------------


def test_the_cert_may_be_a_certificate_or_a_public_key(signer: TokenServer) -> None:
    token = signer.issue("alice", [PULL_PUSH])
    from_cert = BearerAuth(signer.config(cert=signer.cert_path)).verify(token)
    from_key = BearerAuth(signer.config(cert=signer.public_key_path)).verify(token)
    assert from_cert == from_key == Grant("alice", (PULL_PUSH,))


def test_the_first_certificate_of_a_bundle_is_the_signer(
    tmp_path: Path, signer: TokenServer
) -> None:
    other = TokenServer(tmp_path / "other")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(signer.cert_pem + other.cert_pem)
    auth = BearerAuth(signer.config(cert=bundle))
    assert auth.verify(signer.issue("alice")).subject == "alice"
    assert reason(auth, other.issue("alice")) == "bad signature"


def test_text_around_the_pem_block_is_allowed(tmp_path: Path, signer: TokenServer) -> None:
    path = tmp_path / "annotated.pem"
    path.write_bytes(b"subject=CN = signer\n" + signer.cert_pem + b"\n")
    assert BearerAuth(signer.config(cert=path)).verify(signer.issue("a")).subject == "a"


def _cert_error(signer: TokenServer, path: Path) -> str:
    with pytest.raises(ValueError) as caught:
        BearerAuth(signer.config(cert=path))
    message = str(caught.value)
    assert str(path) in message
    return message


def test_a_missing_cert_is_a_clear_error(tmp_path: Path, signer: TokenServer) -> None:
    message = _cert_error(signer, tmp_path / "absent.crt")
    assert "cannot read" in message
    assert "No such file" in message


def test_a_directory_as_cert_is_a_clear_error(tmp_path: Path, signer: TokenServer) -> None:
    assert "cannot read" in _cert_error(signer, tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a pem file",
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
    ],
)
def test_a_cert_that_is_not_pem_is_a_clear_error(
    tmp_path: Path, signer: TokenServer, content: bytes
) -> None:
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    assert "not" in _cert_error(signer, path)


def test_a_private_key_as_cert_is_a_clear_error(tmp_path: Path, signer: TokenServer) -> None:
    path = tmp_path / "private.pem"
    path.write_bytes(
        signer.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert "private key" in _cert_error(signer, path)


def test_a_key_that_cannot_sign_tokens_is_a_clear_error(
    tmp_path: Path, signer: TokenServer
) -> None:
    path = tmp_path / "dsa.pem"
    path.write_bytes(dsa_public_pem())
    assert "cannot sign tokens" in _cert_error(signer, path)


# -- the configuration --------------------------------------------------------------------------


def test_the_config_takes_zots_keys_only() -> None:
    config = BearerConfig.model_validate({"realm": "https://a/token", "service": "s", "cert": "c"})
    assert (config.realm, config.service, config.cert) == ("https://a/token", "s", "c")
    with pytest.raises(ValidationError, match="issuer"):
        BearerConfig.model_validate({"realm": "r", "service": "s", "cert": "c", "issuer": "i"})
    with pytest.raises(ValidationError, match="service"):
        BearerConfig.model_validate({"realm": "r", "cert": "c"})


@pytest.mark.parametrize("field", ["realm", "service", "cert"])
def test_the_config_refuses_empty_values(field: str) -> None:
    values = {"realm": "r", "service": "s", "cert": "c", field: ""}
    with pytest.raises(ValidationError, match=field):
        BearerConfig.model_validate(values)


@pytest.mark.parametrize("field", ["realm", "service"])
def test_the_config_refuses_control_characters(field: str) -> None:
    values = {"realm": "r", "service": "s", "cert": "c", field: "x\r\nSet-Cookie: a=b"}
    with pytest.raises(ValidationError, match="control characters"):
        BearerConfig.model_validate(values)


# -- the challenge ------------------------------------------------------------------------------


def _auth_for(signer: TokenServer, realm: str, service: str) -> BearerAuth:
    config = BearerConfig(realm=realm, service=service, cert=str(signer.cert_path))
    return BearerAuth(config)


def test_the_challenge_names_realm_service_and_scope(signer: TokenServer) -> None:
    auth = _auth_for(signer, "https://auth.example/token", "registry.example")
    assert auth.challenge(["repository:samalba/my-app:pull,push"]) == (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:samalba/my-app:pull,push"'
    )


def test_several_scopes_share_one_parameter(signer: TokenServer) -> None:
    auth = _auth_for(signer, "https://a/token", "svc")
    scopes = ["repository:a:pull", "repository:b:pull,push", "repository:a:pull"]
    assert auth.challenge(scopes) == (
        'Bearer realm="https://a/token",service="svc",'
        'scope="repository:a:pull repository:b:pull,push"'
    )


def test_no_scope_leaves_the_parameter_out(signer: TokenServer) -> None:
    auth = _auth_for(signer, "https://a/token", "svc")
    assert auth.challenge([]) == 'Bearer realm="https://a/token",service="svc"'
    assert auth.challenge([""]) == 'Bearer realm="https://a/token",service="svc"'


@pytest.mark.parametrize("error", ["invalid_token", "insufficient_scope", "invalid_request"])
def test_the_error_comes_last(signer: TokenServer, error: str) -> None:
    auth = _auth_for(signer, "https://a/token", "svc")
    assert auth.challenge(["registry:catalog:*"], error) == (
        f'Bearer realm="https://a/token",service="svc",scope="registry:catalog:*",error="{error}"'
    )
    assert auth.challenge([], error).endswith(f'service="svc",error="{error}"')


def test_an_unknown_error_code_is_a_bug(signer: TokenServer) -> None:
    auth = _auth_for(signer, "https://a/token", "svc")
    with pytest.raises(ValueError, match="error code"):
        auth.challenge([], "token expired")


def test_quotes_and_backslashes_are_escaped(signer: TokenServer) -> None:
    auth = _auth_for(signer, 'https://a/t?x="y"', "s\\v")
    header = auth.challenge(['repository:we"ird:pull'])
    assert header == (
        r'Bearer realm="https://a/t?x=\"y\"",service="s\\v",scope="repository:we\"ird:pull"'
    )
    params = dict(_parse_challenge(header))
    assert params == {
        "realm": 'https://a/t?x="y"',
        "service": "s\\v",
        "scope": 'repository:we"ird:pull',
    }


def test_a_scope_with_a_line_break_cannot_reach_the_header(signer: TokenServer) -> None:
    auth = _auth_for(signer, "https://a/token", "svc")
    with pytest.raises(ValueError, match="control characters"):
        auth.challenge(["repository:a\r\nX-Evil: 1:pull"])


def test_format_scope() -> None:
    assert (
        format_scope("repository", "team/app", ["pull", "push"]) == "repository:team/app:pull,push"
    )
    assert format_scope("registry", "catalog", ["*"]) == "registry:catalog:*"


def _parse_challenge(header: str) -> list[tuple[str, str]]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "Bearer"
    pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest)
    return [(key, re.sub(r"\\(.)", r"\1", value)) for key, value in pairs]


# -- the cache ----------------------------------------------------------------------------------


class _CountingDecode:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._decode = jwt.decode
        # bearer looks jwt.decode up on every call, so this sees each signature check.
        monkeypatch.setattr(jwt, "decode", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._decode(*args, **kwargs)


def test_a_cached_token_is_not_verified_again(
    signer: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    decode = _CountingDecode(monkeypatch)
    auth = BearerAuth(signer.config())
    token = signer.issue("alice", [PULL_PUSH])
    first = auth.verify(token)
    assert auth.verify(token) is first
    assert auth.verify(token) is first
    assert decode.calls == 1


def test_failures_are_not_cached(signer: TokenServer, monkeypatch: pytest.MonkeyPatch) -> None:
    decode = _CountingDecode(monkeypatch)
    auth = BearerAuth(signer.config())
    token = signer.issue("alice", audience="other")
    for _ in range(2):
        assert reason(auth, token) == "token is for another service"
    assert decode.calls == 2


def test_a_cache_entry_ends_at_the_tokens_exp(
    signer: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    decode = _CountingDecode(monkeypatch)
    now = [time.time()]
    auth = BearerAuth(signer.config(), clock=lambda: now[0])
    token = signer.issue("alice", expires_in=60)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    decode.calls = 0
    auth.verify(token)
    now[0] = exp - 0.001
    auth.verify(token)
    assert decode.calls == 1
    now[0] = exp
    auth.verify(token)  # the cache has let go; the real clock still finds the token valid
    assert decode.calls == 2


def test_an_expired_cached_token_is_refused(signer: TokenServer) -> None:
    auth = BearerAuth(signer.config(), leeway=0)
    token = signer.issue("alice", expires_in=2)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert auth.verify(token).subject == "alice"
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    assert reason(auth, token) == "token expired"


def test_the_cache_is_bounded(signer: TokenServer, monkeypatch: pytest.MonkeyPatch) -> None:
    decode = _CountingDecode(monkeypatch)
    auth = BearerAuth(signer.config(), cache_size=2)
    first, second, third = (signer.issue(name) for name in ("a", "b", "c"))
    auth.verify(first)
    auth.verify(second)
    auth.verify(first)  # now the most recently used
    auth.verify(third)  # evicts second
    assert decode.calls == 3
    auth.verify(first)
    assert decode.calls == 3
    auth.verify(second)
    assert decode.calls == 4


def test_a_cache_of_size_zero_caches_nothing(
    signer: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    decode = _CountingDecode(monkeypatch)
    auth = BearerAuth(signer.config(), cache_size=0)
    token = signer.issue("a")
    auth.verify(token)
    auth.verify(token)
    assert decode.calls == 2


# -- the token server ---------------------------------------------------------------------------


def _pull_only_for_guests(subject: str, requested: Access) -> set[str]:
    if subject == "admin":
        return {"*"}
    if subject == "alice" and requested.name.startswith("alice/"):
        return {"pull", "push", "delete"}
    return {"pull"} if subject else set()


@pytest.fixture
def token_server(make_token_server: MakeTokenServer) -> TokenServer:
    users = {"alice": "wonderland", "admin": "s3cret"}
    return make_token_server(users=users, policy=_pull_only_for_guests)


def _fetch(
    server: TokenServer, scopes: list[str], credentials: tuple[str, str] | None = None
) -> httpx.Response:
    params = {"service": server.service, "scope": scopes}
    return httpx.get(server.realm, params=params, auth=credentials, timeout=10)


def test_the_token_server_issues_what_the_policy_allows(token_server: TokenServer) -> None:
    auth = BearerAuth(token_server.config())
    scopes = ["repository:alice/app:pull,push", "repository:team/app:pull,push"]
    response = _fetch(token_server, scopes, ("alice", "wonderland"))
    assert response.status_code == 200
    grant = auth.verify(response.json()["token"])
    assert grant.subject == "alice"
    assert grant.access == (
        Access("repository", "alice/app", frozenset({"pull", "push"})),
        Access("repository", "team/app", frozenset({"pull"})),
    )
    assert token_server.requests[-1].scopes == tuple(scopes)


def test_the_token_server_grants_the_intersection_only(token_server: TokenServer) -> None:
    auth = BearerAuth(token_server.config())
    response = _fetch(token_server, ["repository:x/y:push"], ("admin", "s3cret"))
    assert auth.verify(response.json()["token"]).access == (
        Access("repository", "x/y", frozenset({"push"})),
    )
    response = _fetch(token_server, ["repository:alice/app:push"], None)
    grant = auth.verify(response.json()["token"])
    assert grant == Grant("", (Access("repository", "alice/app", frozenset()),))


def test_the_token_response_has_the_spec_fields(token_server: TokenServer) -> None:
    response = _fetch(token_server, ["repository:a/b:pull"], ("alice", "wonderland"))
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] >= 60
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"])


def test_the_token_server_accepts_space_separated_scopes(token_server: TokenServer) -> None:
    response = _fetch(token_server, ["repository:a:pull repository:b:pull"], ("admin", "s3cret"))
    grant = BearerAuth(token_server.config()).verify(response.json()["token"])
    assert [entry.name for entry in grant.access] == ["a", "b"]


def test_a_name_with_a_port_keeps_it(token_server: TokenServer) -> None:
    response = _fetch(token_server, ["repository:localhost:5000/a:pull"], ("admin", "s3cret"))
    grant = BearerAuth(token_server.config()).verify(response.json()["token"])
    assert grant.allows("repository", "localhost:5000/a", "pull")


@pytest.mark.parametrize(
    "credentials", [("alice", "wrong"), ("nobody", "wonderland"), ("alice", ""), ("", "")]
)
def test_bad_credentials_get_401(token_server: TokenServer, credentials: tuple[str, str]) -> None:
    response = _fetch(token_server, ["repository:a:pull"], credentials)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert "token" not in response.json()


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + b64url(b"no-colon"), "Digest x=1"])
def test_malformed_credentials_get_401(token_server: TokenServer, header: str) -> None:
    params = {"service": token_server.service, "scope": "repository:a:pull"}
    response = httpx.get(token_server.realm, params=params, headers={"Authorization": header})
    assert response.status_code == 401


def test_a_server_without_anonymous_access_wants_credentials(
    make_token_server: MakeTokenServer,
) -> None:
    server = make_token_server(users={"u": "p"}, anonymous=False)
    assert _fetch(server, ["repository:a:pull"]).status_code == 401
    assert _fetch(server, ["repository:a:pull"], ("u", "p")).status_code == 200


def test_the_token_is_for_the_requested_service(token_server: TokenServer) -> None:
    params = {"service": "other-registry", "scope": "repository:a:pull"}
    token = httpx.get(token_server.realm, params=params).json()["token"]
    assert reason(BearerAuth(token_server.config()), token) == "token is for another service"


@pytest.mark.parametrize(
    "params",
    [
        {"scope": "repository:a:pull"},
        {"service": "ocireg-test", "scope": "repository"},
        {"service": "ocireg-test", "scope": "repository:a"},
    ],
)
def test_bad_requests_get_400(token_server: TokenServer, params: dict[str, str]) -> None:
    assert httpx.get(token_server.realm, params=params).status_code == 400


def test_no_scope_gives_a_token_granting_nothing(token_server: TokenServer) -> None:
    token = httpx.get(token_server.realm, params={"service": token_server.service}).json()["token"]
    assert BearerAuth(token_server.config()).verify(token) == Grant("", ())


def test_other_paths_and_post_get_404(token_server: TokenServer) -> None:
    assert httpx.get(f"{token_server.url}/other").status_code == 404
    assert httpx.post(token_server.realm, data={"grant_type": "password"}).status_code == 404


def test_the_token_server_stops(tmp_path: Path) -> None:
    with TokenServer(tmp_path) as server:
        realm = server.realm
        assert httpx.get(realm, params={"service": "s"}).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(realm, params={"service": "s"}, timeout=2)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("repository:a/b:pull,push", Access("repository", "a/b", frozenset({"pull", "push"}))),
        ("repository:h:5000/a:pull", Access("repository", "h:5000/a", frozenset({"pull"}))),
        ("registry:catalog:*", Access("registry", "catalog", frozenset({"*"}))),
        ("repository:a:", Access("repository", "a", frozenset())),
    ],
)
def test_parse_scope(scope: str, expected: Access) -> None:
    assert parse_scope(scope) == expected


def _der(pem: bytes) -> bytes:
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    return base64.b64decode(body)
