"""Notation signatures made by jwcrypto and pycose, pushed over HTTP as notation pushes them (a
referrer of the image, one envelope layer), judged by ocireg's own verifier against a CA
certificate uploaded through the API, and shown by search as zot shows them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ocireg.ext.trust.verdict import Subject
from tests.ext.trust import pki
from tests.ext.trust.signers import payload, sign_cose, sign_jws
from tests.liveserver import LiveServer, live_server
from tests.oci import (
    EMPTY,
    OCI_MANIFEST,
    canonical,
    descriptor,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)

NOTATION = "/v2/_zot/ext/notation"
SEARCH = "/v2/_zot/ext/search"
ENVELOPES: dict[str, Callable[..., bytes]] = {
    "application/jose+json": sign_jws,
    "application/cose": sign_cose,
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    extra = {"extensions": {"search": {}, "trust": {"notation": True}}}
    with live_server(tmp_path_factory.mktemp("notation"), extra) as server:
        yield server


@pytest.fixture(scope="module")
def chain() -> list[pki.Issued]:
    root = pki.root("notation http root")
    return [pki.leaf(root, "notation http signer"), root]


@pytest.fixture
def client(live: LiveServer, chain: list[pki.Issued]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        stored = http.post(NOTATION, params={"truststoreType": "ca"}, content=chain[1].pem)
        assert stored.status_code == 200, stored.text
        yield http


def _image(client: httpx.Client, repo: str) -> dict[str, Any]:
    manifest = image_manifest(client, repo, [repo.encode()])
    put_manifest(client, repo, "v1", manifest)
    return descriptor(OCI_MANIFEST, canonical(manifest))


def _push_signature(client: httpx.Client, repo: str, subject: dict[str, Any],
                    envelope_type: str, envelope: bytes) -> None:  # fmt: skip
    push_blob(client, repo, envelope)
    push_blob(client, repo, b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.cncf.notary.signature",
        "config": EMPTY,
        "layers": [descriptor(envelope_type, envelope)],
        "subject": subject,
    }
    put_manifest(client, repo, sha256(canonical(manifest)), manifest)


def _signatures_once_judged(client: httpx.Client, repo: str) -> list[dict[str, Any]]:
    query = (
        f'{{ Image(image: "{repo}:v1") {{ IsSigned SignatureInfo {{ Tool IsTrusted Author }} }} }}'
    )
    deadline = time.monotonic() + 20
    while True:
        data = client.post(SEARCH, json={"query": query}).json().get("data") or {}
        found: list[dict[str, Any]] = (data.get("Image") or {}).get("SignatureInfo") or []
        if any(s["IsTrusted"] for s in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.parametrize("envelope_type", sorted(ENVELOPES))
def test_a_signature_chained_to_an_uploaded_ca_is_trusted(
    client: httpx.Client, chain: list[pki.Issued], envelope_type: str
) -> None:
    repo = f"notation/{envelope_type.split('/')[1].replace('+', '-')}"
    subject = _image(client, repo)
    signed = Subject(subject["digest"], subject["mediaType"], subject["size"])
    _push_signature(client, repo, subject, envelope_type,
                    ENVELOPES[envelope_type](chain, payload(signed)))  # fmt: skip
    assert _signatures_once_judged(client, repo) == [
        {
            "Tool": "notation",
            "IsTrusted": True,
            "Author": "CN=notation http signer,O=Wabbit Networks,ST=WA,C=US",
        }
    ]


def test_a_signature_of_another_image_is_not_trusted(
    live: LiveServer, client: httpx.Client, chain: list[pki.Issued]
) -> None:
    repo = "notation/other"
    subject = _image(client, repo)
    other = Subject("sha256:" + "0" * 64, subject["mediaType"], subject["size"])
    _push_signature(client, repo, subject, "application/jose+json", sign_jws(chain, payload(other)))
    time.sleep(2)  # judged within about a second of the push
    assert _signatures_once_judged(client, repo) == [
        {"Tool": "notation", "IsTrusted": False, "Author": ""}
    ]
    reasons = [
        e.get("reason", "") for e in live.log_events() if e.get("msg") == "signature not trusted"
    ]
    assert any("digest" in reason for reason in reasons), reasons
