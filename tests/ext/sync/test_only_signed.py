"""``onlySigned``: a mirror (sync + trust) copies from an upstream ocireg only the images with a
signature that trust verifies with the keys uploaded to the mirror, periodically and on demand;
unsigned and untrusted images are neither stored nor served, and the log says why. Signatures
are made with ``cryptography`` as cosign makes them (tests/ext/cosigning.py), and as notation
makes them with ``jwcrypto`` (tests/ext/trust/signers.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocireg.conformance.layout import build_multiarch_layout
from ocireg.ext.trust.verdict import Subject
from tests.ext.cosigning import Signer, push_legacy, push_referrer
from tests.ext.sync.upstreams import inspect_digest, skopeo
from tests.ext.trust import pki
from tests.ext.trust.signers import payload as notary_payload
from tests.ext.trust.signers import sign_jws
from tests.liveserver import LiveServer, live_server
from tests.oci import (
    EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    canonical,
    descriptor,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)
from tests.tools import require_binary

pytestmark = pytest.mark.e2e
REFUSED = "sync image refused: onlySigned"
SEARCH = "/v2/_zot/ext/search"


def _image(client: httpx.Client, repo: str, tag: str = "v1") -> dict[str, Any]:
    manifest = image_manifest(client, repo, [f"{repo} {tag}".encode()])
    put_manifest(client, repo, tag, manifest)
    return descriptor(OCI_MANIFEST, canonical(manifest))


def _mirror_config(url: str, **registry: Any) -> dict[str, Any]:
    upstream = {"urls": [url], "tlsVerify": False, "onlySigned": True, **registry}
    return {
        "extensions": {
            "search": {},
            "trust": {"cosign": True, "notation": True},
            "sync": {"registries": [upstream]},
        }
    }


def _wait(check: Callable[[], Any], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _refusals(server: LiveServer, repo: str) -> list[str]:
    return [e["reason"] for e in server.log_events() if e["msg"] == REFUSED and e["repo"] == repo]


def _tags(client: httpx.Client, repo: str) -> list[str]:
    answer = client.get(f"/v2/{repo}/tags/list")
    return list(answer.json()["tags"] or []) if answer.status_code == 200 else []


def _push_notation(
    client: httpx.Client, repo: str, subject: dict[str, Any], chain: list[pki.Issued]
) -> None:
    """A Notary Project JWS signature of ``subject`` as a referrer, as notation pushes it."""
    signed = notary_payload(Subject(subject["digest"], subject["mediaType"], subject["size"]))
    envelope = sign_jws(chain, signed)
    push_blob(client, repo, envelope)
    push_blob(client, repo, b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.cncf.notary.signature",
        "config": EMPTY,
        "layers": [descriptor("application/jose+json", envelope)],
        "subject": subject,
    }
    put_manifest(client, repo, sha256(canonical(manifest)), manifest)


class Upstream:
    """An upstream ocireg holding a signed, a legacy-signed, an unsigned and an untrusted
    image, signed with ``signer`` (and ``stranger``, whose key the mirror never gets)."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.signer, self.stranger = Signer.ecdsa(), Signer.ecdsa()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            self.signed = _image(client, "signed/app")
            push_referrer(client, "signed/app", self.signed, self.signer)
            self.legacy = _image(client, "signed/legacy")
            push_legacy(client, "signed/legacy", self.legacy["digest"], self.signer)
            self.unsigned = _image(client, "unsigned/app")
            self.untrusted = _image(client, "untrusted/app")
            push_referrer(client, "untrusted/app", self.untrusted, self.stranger)
            self.root = pki.root("sync notation root")
            self.notary = _image(client, "notary/app")
            _push_notation(client, "notary/app", self.notary, [pki.leaf(self.root), self.root])


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    with live_server(tmp_path_factory.mktemp("upstream")) as server:
        yield Upstream(server)


def _upload(client: httpx.Client, signer: Signer) -> None:
    answer = client.post("/v2/_zot/ext/cosign", content=signer.public_pem())
    assert answer.status_code == 200, answer.text


def test_a_periodic_round_copies_only_images_with_a_trusted_signature(
    tmp_path: Path, upstream: Upstream
) -> None:
    config = _mirror_config(upstream.server.url, content=[{"prefix": "**"}], pollInterval="1s")
    with (
        live_server(tmp_path / "mirror", config) as mirror,
        httpx.Client(base_url=mirror.url, timeout=30) as client,
    ):
        _upload(client, upstream.signer)
        assert _wait(lambda: _tags(client, "signed/app") and _tags(client, "signed/legacy"))
        assert _wait(lambda: _refusals(mirror, "unsigned/app"))
        assert _wait(lambda: _refusals(mirror, "untrusted/app"))
        got = client.get("/v2/signed/app/manifests/v1")
        assert got.headers["Docker-Content-Digest"] == upstream.signed["digest"]
        referrers = client.get(f"/v2/signed/app/referrers/{upstream.signed['digest']}")
        assert len(referrers.json()["manifests"]) == 1
        legacy_tag = upstream.legacy["digest"].replace(":", "-") + ".sig"
        assert _tags(client, "signed/legacy") == sorted(["v1", legacy_tag])
        unsigned, untrusted = (
            _refusals(mirror, "unsigned/app"),
            _refusals(mirror, "untrusted/app"),
        )
        assert unsigned[0].startswith("the upstream has no signature of it")
        assert untrusted[0] == (
            "no signature of it is trusted: no uploaded public key verifies the signature"
        )
        for repo in ("unsigned/app", "untrusted/app"):
            assert client.get(f"/v2/{repo}/manifests/v1").status_code == 404
            assert _tags(client, repo) == []
        untrusted_sigs = f"/v2/untrusted/app/referrers/{upstream.untrusted['digest']}"
        # the copied signature goes again, just after the refusal is logged
        assert _wait(lambda: client.get(untrusted_sigs).json()["manifests"] == [])
        catalog = client.get("/v2/_catalog").json()["repositories"]
        assert {"signed/app", "signed/legacy"} <= set(catalog)
        shown = _search_signature(client, "signed/app:v1")
        assert shown == [
            {
                "Tool": "cosign",
                "IsTrusted": True,
                "Author": upstream.signer.public_pem().decode(),
            }
        ]


def _search_signature(client: httpx.Client, image: str) -> list[dict[str, Any]]:
    query = (
        f'{{ Image(image: "{image}") {{ IsSigned SignatureInfo {{ Tool IsTrusted Author }} }} }}'
    )

    def shown() -> list[dict[str, Any]]:
        data = client.post(SEARCH, json={"query": query}).json().get("data")
        info: list[dict[str, Any]] = (data or {}).get("Image", {}).get("SignatureInfo") or []
        return info if any(s["IsTrusted"] for s in info) else []

    found: list[dict[str, Any]] = _wait(shown)
    return found


def test_on_demand_serves_a_trusted_image_and_refuses_the_others(
    tmp_path: Path, upstream: Upstream
) -> None:
    config = _mirror_config(upstream.server.url, onDemand=True, manifestCheckInterval="0s")
    with (
        live_server(tmp_path / "mirror", config) as mirror,
        httpx.Client(base_url=mirror.url, timeout=30) as client,
    ):
        assert client.get("/v2/signed/app/manifests/v1").status_code == 404  # no key yet
        assert _refusals(mirror, "signed/app")[0].startswith("no signature of it is trusted")
        _upload(client, upstream.signer)
        for repo, image in (
            ("signed/app", upstream.signed),
            ("signed/legacy", upstream.legacy),
        ):
            got = client.get(f"/v2/{repo}/manifests/v1")
            assert got.status_code == 200, got.text
            assert got.headers["Docker-Content-Digest"] == image["digest"]
            layer = json.loads(got.content)["layers"][0]["digest"]
            assert client.get(f"/v2/{repo}/blobs/{layer}").status_code == 200
        by_digest = client.get(f"/v2/untrusted/app/manifests/{upstream.untrusted['digest']}")
        assert by_digest.status_code == 404
        assert client.get("/v2/unsigned/app/manifests/v1").status_code == 404
        unsigned_layer = _layer_of(upstream, "unsigned/app")
        assert client.get(f"/v2/unsigned/app/blobs/{unsigned_layer}").status_code == 404
        assert _refusals(mirror, "unsigned/app")[0].startswith("the upstream has no signature")
        assert _refusals(mirror, "untrusted/app")[0].startswith("no signature of it is trusted")
        assert _wait(lambda: _tags(client, "signed/app") == ["v1"])


def _layer_of(upstream: Upstream, repo: str) -> str:
    with httpx.Client(base_url=upstream.server.url, timeout=30) as client:
        manifest = client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
        return str(manifest.json()["layers"][0]["digest"])


def test_skopeo_pulls_a_signed_multi_arch_index_on_demand(
    tmp_path: Path, upstream: Upstream
) -> None:
    """A signed index: its children and their blobs are served while the image is stored."""
    tool = require_binary("skopeo", "apt-get install skopeo")
    layout = tmp_path / "layout"
    index_digest = build_multiarch_layout(layout, "v1")
    target = f"docker://{upstream.server.host}/signed/multi:v1"
    skopeo(tool, "copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:v1", target)
    with httpx.Client(base_url=upstream.server.url, timeout=30) as client:
        index = client.get("/v2/signed/multi/manifests/v1", headers={"Accept": OCI_INDEX})
        push_referrer(client, "signed/multi", descriptor(OCI_INDEX, index.content), upstream.signer)
    config = _mirror_config(upstream.server.url, onDemand=True)
    with (
        live_server(tmp_path / "mirror", config) as mirror,
        httpx.Client(base_url=mirror.url, timeout=30) as client,
    ):
        _upload(client, upstream.signer)
        remote = f"docker://{mirror.host}/signed/multi:v1"
        assert inspect_digest(tool, remote) == index_digest
        out = tmp_path / "out"
        skopeo(tool, "copy", "--all", "--src-tls-verify=false", remote, f"oci:{out}:v1")
        assert inspect_digest(tool, f"oci:{out}:v1") == index_digest
