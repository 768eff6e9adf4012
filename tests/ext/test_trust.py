"""trust over HTTP: cosign signatures made with ``cryptography`` (tests/ext/cosigning.py) and
notation signatures judged by a stand-in verifier (tests/ext/fakenotation.py), pushed as the
tools push them; verdicts read back through search; uploads, listing and deletion of keys and
certificates; the ``requireSignature`` pull gate."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.certs import make_ca
from tests.ext.cosigning import (
    Signer,
    bundle,
    payload,
    push_bundle,
    push_legacy,
    push_referrer,
    signature_manifest,
)
from tests.extended import ROOT
from tests.liveserver import LiveServer, live_server
from tests.oci import (
    EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    canonical,
    descriptor,
    error_codes,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)

COSIGN = "/v2/_zot/ext/cosign"
NOTATION = "/v2/_zot/ext/notation"
SEARCH = "/v2/_zot/ext/search"
NOTARY = "application/vnd.cncf.notary.signature"
TRUST = {"cosign": True, "notation": True, "requireSignature": ["gated/**"]}
FAKE = {"OCIREG_EXTENSIONS": "tests.ext.fakenotation:EXTENSION", "PYTHONPATH": str(ROOT)}
_names = iter(range(10_000))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    extra = {"extensions": {"search": {}, "trust": TRUST, "fakenotation": {}}}
    with live_server(tmp_path_factory.mktemp("trust"), extra, FAKE) as server:
        yield server


@pytest.fixture
def client(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


def _repo(prefix: str = "signed") -> str:
    return f"{prefix}/app{next(_names)}"


def _image(client: httpx.Client, repo: str, tag: str = "v1") -> dict[str, Any]:
    """Push an image; its descriptor (what a signature names as subject)."""
    manifest = image_manifest(client, repo, [f"{repo} {tag}".encode()])
    put_manifest(client, repo, tag, manifest)
    return descriptor(OCI_MANIFEST, canonical(manifest))


def _upload_key(client: httpx.Client, signer: Signer) -> str:
    answer = client.post(COSIGN, content=signer.public_pem())
    assert answer.status_code == 200, answer.text
    digest: str = answer.json()["digest"]
    return digest


def _signatures(client: httpx.Client, repo: str, tag: str = "v1") -> list[dict[str, Any]]:
    fields = "Digest IsSigned SignatureInfo { Tool IsTrusted Author }"
    query = f'{{ Image(image: "{repo}:{tag}") {{ {fields} Manifests {{ {fields} }} }} }}'
    answer = client.post(SEARCH, json={"query": query})
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    if data is None:  # not in the meta DB yet (it is written within a second)
        assert "not found" in answer.text, answer.text
        return []
    image = data["Image"]
    (first, *_) = image["Manifests"]
    if first["Digest"] == image["Digest"]:  # an image, not an index: zot shows the same twice
        assert first["SignatureInfo"] == image["SignatureInfo"]
        assert first["IsSigned"] == image["IsSigned"] == bool(image["SignatureInfo"])
    found: list[dict[str, Any]] = image["SignatureInfo"]
    return found


def _eventually(
    client: httpx.Client, repo: str, wanted: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The image's signatures once ``wanted`` holds (judging runs in the background)."""
    deadline = time.monotonic() + 20
    while True:
        found = _signatures(client, repo)
        if wanted(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _trusted(found: list[dict[str, Any]]) -> bool:
    return bool(found) and all(s["IsTrusted"] for s in found)


def _judged_untrusted(live: LiveServer, signature: str) -> list[str]:
    """The reasons the log gives for not trusting ``signature``, once it gave one."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        reasons = [
            e["reason"]
            for e in live.log_events()
            if e.get("msg") == "signature not trusted" and e.get("signature") == signature
        ]
        if reasons:
            return reasons
        time.sleep(0.2)
    raise AssertionError(f"{signature} was not judged")


# -- cosign: trusted ----------------------------------------------------------------------------
def test_a_legacy_tag_signature_is_trusted_with_the_uploaded_key(client: httpx.Client) -> None:
    signer, repo = Signer.ecdsa(), _repo()
    _upload_key(client, signer)
    subject = _image(client, repo)
    push_legacy(client, repo, subject["digest"], signer)
    found = _eventually(client, repo, _trusted)
    assert found == [{"Tool": "cosign", "IsTrusted": True, "Author": signer.public_pem().decode()}]


@pytest.mark.parametrize("kind", ["ecdsa", "rsa", "ed25519"])
def test_a_referrer_signature_is_trusted_for_each_key_kind(client: httpx.Client, kind: str) -> None:
    signer, repo = getattr(Signer, kind)(), _repo()
    _upload_key(client, signer)
    subject = _image(client, repo)
    push_referrer(client, repo, subject, signer)
    found = _eventually(client, repo, _trusted)
    assert found == [{"Tool": "cosign", "IsTrusted": True, "Author": signer.public_pem().decode()}]


def test_a_sigstore_bundle_signed_with_an_uploaded_key_is_trusted(client: httpx.Client) -> None:
    signer, repo = Signer.ecdsa(), _repo()
    _upload_key(client, signer)
    subject = _image(client, repo)
    push_bundle(client, repo, subject, bundle(subject["digest"], signer))
    assert _eventually(client, repo, _trusted)[0]["IsTrusted"] is True


def test_one_entry_per_signature_layer(client: httpx.Client) -> None:
    """cosign puts several signatures in one manifest, one layer each; zot lists each."""
    trusted, stranger, repo = Signer.ecdsa(), Signer.ecdsa(), _repo()
    _upload_key(client, trusted)
    subject = _image(client, repo)
    data = payload(subject["digest"])
    manifest = signature_manifest(client, repo, data, trusted.sign(data), subject)
    other = signature_manifest(client, repo, data, stranger.sign(data), subject)
    manifest["layers"].append(other["layers"][0])
    put_manifest(client, repo, sha256(canonical(manifest)), manifest)
    found = _eventually(client, repo, lambda f: any(s["IsTrusted"] for s in f))
    author = trusted.public_pem().decode()
    assert found == [
        {"Tool": "cosign", "IsTrusted": True, "Author": author},
        {"Tool": "cosign", "IsTrusted": False, "Author": ""},
    ]


# -- cosign: the negative cases ------------------------------------------------------------------
def _untrusted(live: LiveServer, client: httpx.Client, repo: str, signature: str) -> list[str]:
    reasons = _judged_untrusted(live, signature)
    assert _signatures(client, repo) == [{"Tool": "cosign", "IsTrusted": False, "Author": ""}]
    return reasons


def test_a_tampered_payload_is_not_trusted(live: LiveServer, client: httpx.Client) -> None:
    signer, repo = Signer.ecdsa(), _repo()
    _upload_key(client, signer)
    subject = _image(client, repo)
    signed = payload(subject["digest"])
    tampered = signed.replace(b"registry.local/app", b"registry.local/evil")
    signature = push_referrer(client, repo, subject, signer, tampered, signer.sign(signed))
    reasons = _untrusted(live, client, repo, signature)
    assert reasons == ["no uploaded public key verifies the signature"]


def test_a_payload_naming_a_wrong_digest_is_not_trusted(
    live: LiveServer, client: httpx.Client
) -> None:
    signer, repo = Signer.ecdsa(), _repo()
    _upload_key(client, signer)
    subject = _image(client, repo)
    wrong = sha256(b"some other manifest")
    signature = push_referrer(client, repo, subject, signer, payload(wrong))
    reasons = _untrusted(live, client, repo, signature)
    assert reasons == [f"the payload signs {wrong}, not {subject['digest']}"]


def test_the_signature_of_another_image_is_not_trusted(
    live: LiveServer, client: httpx.Client
) -> None:
    """A genuine signature of image B, attached to image A (as referrer and as A's tag)."""
    signer, repo = Signer.ecdsa(), _repo()
    _upload_key(client, signer)
    subject = _image(client, repo)
    other = _image(client, repo, "other")
    signature = push_legacy(client, repo, subject["digest"], signer, signed=other["digest"])
    reasons = _untrusted(live, client, repo, signature)
    assert reasons == [f"the payload signs {other['digest']}, not {subject['digest']}"]


def test_a_signature_by_a_key_not_uploaded_is_not_trusted(
    live: LiveServer, client: httpx.Client
) -> None:
    repo = _repo()
    subject = _image(client, repo)
    signature = push_referrer(client, repo, subject, Signer.ecdsa())
    assert _untrusted(live, client, repo, signature) == [
        "no uploaded public key verifies the signature"
    ]


def test_a_keyless_bundle_is_not_trusted_and_the_log_says_why(
    live: LiveServer, client: httpx.Client
) -> None:
    repo = _repo()
    subject = _image(client, repo)
    signature = push_bundle(client, repo, subject, bundle(subject["digest"], None, keyless=True))
    reasons = _untrusted(live, client, repo, signature)
    assert len(reasons) == 1 and reasons[0].startswith("keyless signature")


def test_a_bundle_for_another_image_is_not_trusted(live: LiveServer, client: httpx.Client) -> None:
    signer, repo = Signer.ecdsa(), _repo()
    _upload_key(client, signer)
    subject = _image(client, repo)
    other = _image(client, repo, "other")
    signature = push_bundle(client, repo, subject, bundle(other["digest"], signer))
    reasons = _untrusted(live, client, repo, signature)
    assert reasons == [f"the statement's subjects do not include {subject['digest']}"]


def test_a_key_deleted_after_signing_takes_trust_away(client: httpx.Client) -> None:
    signer, repo = Signer.ed25519(), _repo()
    key = _upload_key(client, signer)
    subject = _image(client, repo)
    push_referrer(client, repo, subject, signer)
    assert _trusted(_eventually(client, repo, _trusted))
    assert client.delete(COSIGN, params={"digest": key}).status_code == 200
    assert key not in [k["digest"] for k in client.get(COSIGN).json()["keys"]]
    found = _eventually(client, repo, lambda f: not _trusted(f))
    assert found == [{"Tool": "cosign", "IsTrusted": False, "Author": ""}]
    _upload_key(client, signer)  # and back: an upload judges the signatures again
    assert _trusted(_eventually(client, repo, _trusted))


def test_a_key_change_judges_again_only_the_signatures_it_could_affect(tmp_path: Path) -> None:
    """An uploaded key can only make untrusted signatures trusted, a removed one can only take
    trust away: each judges again only those (issue 14: not every signature)."""
    extra = {"extensions": {"search": {}, "trust": {"cosign": True}}}
    with live_server(tmp_path, extra) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        kept = Signer.ecdsa()
        key = _upload_key(http, kept)
        # which judged again what there was then: nothing
        assert _reevaluations(live, 1) == [{"material": "added", "signatures": 0}]
        trusted_repo, untrusted_repo = _repo(), _repo()
        push_referrer(http, trusted_repo, _image(http, trusted_repo), kept)
        untrusted = push_referrer(http, untrusted_repo, _image(http, untrusted_repo), Signer.rsa())
        assert _trusted(_eventually(http, trusted_repo, _trusted))
        _judged_untrusted(live, untrusted)

        _upload_key(http, Signer.ed25519())  # verifies neither
        assert _reevaluations(live, 2)[1] == {"material": "added", "signatures": 1}
        assert http.delete(COSIGN, params={"digest": key}).status_code == 200
        assert _reevaluations(live, 3)[2] == {"material": "removed", "signatures": 1}
        assert not _trusted(_eventually(http, trusted_repo, lambda f: not _trusted(f)))


def _reevaluations(live: LiveServer, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        found = [
            {"material": e["material"], "signatures": e["signatures"]}
            for e in live.log_events()
            if e.get("msg") == "trust re-evaluated"
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_signature_pushed_before_its_key_is_trusted_once_the_key_comes(
    live: LiveServer, client: httpx.Client
) -> None:
    signer, repo = Signer.rsa(), _repo()
    subject = _image(client, repo)
    signature = push_referrer(client, repo, subject, signer)
    _judged_untrusted(live, signature)
    _upload_key(client, signer)
    assert _trusted(_eventually(client, repo, _trusted))


def test_a_signature_is_never_listed_as_an_image(client: httpx.Client) -> None:
    signer, repo = Signer.ecdsa(), _repo()
    subject = _image(client, repo)
    push_legacy(client, repo, subject["digest"], signer)
    tagged = push_referrer(client, repo, subject, signer)
    manifest = client.get(f"/v2/{repo}/manifests/{tagged}").content
    put_manifest(client, repo, "a-tagged-signature", json.loads(manifest))
    query = f'{{ ImageList(repo: "{repo}") {{ Results {{ Tag }} }} }}'
    deadline = time.monotonic() + 10
    while True:
        results = client.post(SEARCH, json={"query": query}).json()["data"]["ImageList"]
        if results["Results"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert results["Results"] == [{"Tag": "v1"}]


# -- notation (through the stand-in verifier) ----------------------------------------------------
def _notation_signature(
    client: httpx.Client,
    repo: str,
    subject: dict[str, Any],
    claims: dict[str, Any],
    layers: int = 1,
) -> str:
    envelope = json.dumps(claims).encode()
    push_blob(client, repo, envelope)
    push_blob(client, repo, b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": NOTARY,
        "config": EMPTY,
        "layers": [descriptor("application/jose+json", envelope)] * layers,
        "subject": subject,
        "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[]"},
    }
    digest = sha256(canonical(manifest))
    put_manifest(client, repo, digest, manifest)
    return digest


@pytest.fixture(scope="module")
def ca_certificate(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    issued = make_ca(tmp_path_factory.mktemp("ca"), "trust test CA")
    return issued.pem.encode()


def test_notation_verdicts_follow_the_uploaded_certificates(
    client: httpx.Client, ca_certificate: bytes
) -> None:
    repo = _repo()
    subject = _image(client, repo)
    _notation_signature(client, repo, subject, {"signs": subject["digest"], "author": "CN=ann"})
    stored = client.post(NOTATION, params={"truststoreType": "ca"}, content=ca_certificate)
    assert stored.status_code == 200, stored.text
    (digest,) = stored.json()["digests"]
    found = _eventually(client, repo, _trusted)
    assert found == [{"Tool": "notation", "IsTrusted": True, "Author": "CN=ann"}]
    listed = client.get(NOTATION, params={"truststoreType": "ca"}).json()["certificates"]
    assert [c["digest"] for c in listed] == [digest]
    assert listed[0]["subject"] == "CN=trust test CA,O=ocireg tests"
    deleted = client.delete(NOTATION, params={"truststoreType": "ca", "digest": digest})
    assert deleted.status_code == 200
    assert _eventually(client, repo, lambda f: not _trusted(f)) == [
        {"Tool": "notation", "IsTrusted": False, "Author": ""}
    ]
    client.post(NOTATION, content=ca_certificate)  # zot's default truststore: ca


def test_a_notation_verdict_lapses_when_its_certificate_expires(
    client: httpx.Client, ca_certificate: bytes
) -> None:
    client.post(NOTATION, content=ca_certificate)
    repo = _repo()
    subject = _image(client, repo)
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    claims = {"signs": subject["digest"], "author": "CN=ann", "validUntil": soon}
    _notation_signature(client, repo, subject, claims)
    assert _trusted(_eventually(client, repo, _trusted))
    time.sleep(3.5)
    # search stops trusting it at once; the stored verdict follows within a minute
    assert _signatures(client, repo) == [{"Tool": "notation", "IsTrusted": False, "Author": ""}]


def test_a_notation_signature_of_two_layers_is_not_trusted(
    live: LiveServer, client: httpx.Client, ca_certificate: bytes
) -> None:
    client.post(NOTATION, content=ca_certificate)
    repo = _repo()
    subject = _image(client, repo)
    claims = {"signs": subject["digest"], "author": "CN=ann"}
    signature = _notation_signature(client, repo, subject, claims, layers=2)
    reasons = _judged_untrusted(live, signature)
    assert set(reasons) == {"a notation signature has exactly one layer"}
    assert _signatures(client, repo) == [{"Tool": "notation", "IsTrusted": False, "Author": ""}] * 2


# -- uploads -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not a key", "invalid public key: not a PEM public key"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "invalid public key"),
        (b"", "the body is empty"),
    ],
)
def test_a_bad_key_is_a_400_with_a_reason(client: httpx.Client, body: bytes, reason: str) -> None:
    before = client.get(COSIGN).json()
    answer = client.post(COSIGN, content=body)
    assert (answer.status_code, error_codes(answer)) == (400, ["UNSUPPORTED"])
    assert answer.json()["errors"][0]["detail"]["reason"].startswith(reason)
    assert client.get(COSIGN).json() == before


def test_a_weak_rsa_key_is_refused(client: httpx.Client) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = Signer(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    answer = client.post(COSIGN, content=weak.public_pem())
    assert answer.status_code == 400
    assert "1024 bits is too weak" in answer.json()["errors"][0]["detail"]["reason"]


def test_a_bad_certificate_or_truststore_type_is_a_400(
    client: httpx.Client, ca_certificate: bytes
) -> None:
    bad_type = client.post(NOTATION, params={"truststoreType": "root"}, content=ca_certificate)
    assert bad_type.status_code == 400
    assert "invalid truststoreType 'root'" in bad_type.json()["errors"][0]["detail"]["reason"]
    bad_cert = client.post(NOTATION, params={"truststoreType": "tsa"}, content=b"-----BEGIN x")
    assert bad_cert.status_code == 400
    assert bad_cert.json()["errors"][0]["detail"]["reason"].startswith("invalid certificate")
    assert client.get(NOTATION, params={"truststoreType": "tsa"}).json() == {"certificates": []}


def test_a_body_over_8_mib_is_a_413(client: httpx.Client) -> None:
    answer = client.post(COSIGN, content=b"x" * (8 * 1024 * 1024 + 1))
    assert (answer.status_code, error_codes(answer)) == (413, ["UNSUPPORTED"])


def test_a_key_sent_as_curl_sends_it_is_stored_once(client: httpx.Client) -> None:
    """``curl --data-binary @cosign.pub`` (zot's docs) sends a form content type."""
    signer = Signer.ecdsa()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    first = client.post(COSIGN, content=signer.public_pem(), headers=form)
    again = client.post(COSIGN, content=signer.public_pem(), headers=form)
    assert first.status_code == again.status_code == 200
    keys = [k for k in client.get(COSIGN).json()["keys"] if k["digest"] == first.json()["digest"]]
    assert [(k["type"], k["publicKey"]) for k in keys] == [
        ("ecdsa-secp256r1", signer.public_pem().decode())
    ]


def test_deleting_what_is_not_stored_is_a_404(client: httpx.Client) -> None:
    unknown = sha256(b"no such key")
    for path in (COSIGN, NOTATION):
        answer = client.delete(path, params={"digest": unknown})
        assert (answer.status_code, error_codes(answer)) == (404, ["BLOB_UNKNOWN"])


# -- requireSignature ----------------------------------------------------------------------------
def test_an_unsigned_image_in_a_gated_repository_is_refused(client: httpx.Client) -> None:
    repo = _repo("gated")
    subject = _image(client, repo)
    for method in ("GET", "HEAD"):
        for reference in ("v1", subject["digest"]):
            answer = client.request(method, f"/v2/{repo}/manifests/{reference}")
            assert answer.status_code == 403, (method, reference)
    answer = client.get(f"/v2/{repo}/manifests/v1")
    assert error_codes(answer) == ["DENIED"]
    assert "requireSignature" in answer.json()["errors"][0]["detail"]["reason"]


def test_a_trusted_signature_opens_the_gate_and_signatures_pass(client: httpx.Client) -> None:
    signer, repo = Signer.ecdsa(), _repo("gated")
    _upload_key(client, signer)
    subject = _image(client, repo)
    signature = push_legacy(client, repo, subject["digest"], signer)
    # the signature itself is always served: clients fetch it to verify the image
    assert client.get(f"/v2/{repo}/manifests/{signature}").status_code == 200
    tag = subject["digest"].replace(":", "-") + ".sig"
    assert client.get(f"/v2/{repo}/manifests/{tag}").status_code == 200
    _eventually(client, repo, _trusted)
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200
    assert client.head(f"/v2/{repo}/manifests/{subject['digest']}").status_code == 200


def test_an_untrusted_signature_keeps_the_gate_shut(live: LiveServer, client: httpx.Client) -> None:
    repo = _repo("gated")
    subject = _image(client, repo)
    signature = push_referrer(client, repo, subject, Signer.ecdsa())
    _judged_untrusted(live, signature)
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 403


def test_a_signed_index_opens_the_gate_for_its_images(client: httpx.Client) -> None:
    signer, repo = Signer.ecdsa(), _repo("gated")
    _upload_key(client, signer)
    child = _image(client, repo, "child")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]}
    put_manifest(client, repo, "v1", index)
    push_legacy(client, repo, sha256(canonical(index)), signer)
    _eventually(client, repo, _trusted)
    assert client.get(f"/v2/{repo}/manifests/{child['digest']}").status_code == 200


def test_repositories_outside_the_globs_are_not_gated(client: httpx.Client) -> None:
    repo = _repo("open")
    _image(client, repo)
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200


# -- configuration -------------------------------------------------------------------------------
def test_a_tool_turned_off_verifies_nothing_and_takes_no_uploads(
    tmp_path: Path,
) -> None:
    extra = {"extensions": {"search": {}, "trust": {"notation": True}}}
    with live_server(tmp_path, extra) as server, httpx.Client(base_url=server.url) as client:
        answer = client.post(COSIGN, content=Signer.ecdsa().public_pem())
        assert (answer.status_code, error_codes(answer)) == (404, ["EXTENSION_UNKNOWN"])
        assert "extensions.trust.cosign" in answer.json()["errors"][0]["detail"]["reason"]
        repo = _repo()
        subject = _image(client, repo)
        signature = push_legacy(client, repo, subject["digest"], Signer.ecdsa())
        assert _judged_untrusted(server, signature) == [
            "cosign verification is off (extensions.trust.cosign)"
        ]


def test_a_bad_require_signature_glob_is_refused_naming_the_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "config.json"
    document = {
        "storage": {"rootDirectory": str(tmp_path / "data")},
        "http": {"address": "127.0.0.1", "port": 5000},
        "extensions": {"trust": {"requireSignature": ["prod/[z-a]"]}},
    }
    config.write_text(json.dumps(document))
    run = subprocess.run(
        [sys.executable, "-m", "ocireg", "verify", str(config)], capture_output=True, text=True
    )
    assert run.returncode != 0
    assert "extensions.trust.requireSignature" in run.stdout + run.stderr
