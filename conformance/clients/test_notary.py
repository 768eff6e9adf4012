"""A Notary Project signature pushed as a referrer of an image, found again and verified."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from ocireg.conformance.checks import expect, expect_status
from ocireg.conformance.clients.notary import (
    ENVELOPE_TYPE,
    SIGNATURE_TYPE,
    THUMBPRINTS,
    Signer,
    verify,
)
from ocireg.conformance.clients.tools import binary, host, plain_http
from ocireg.conformance.content import Blob, Manifest, empty_config, image
from ocireg.conformance.ops import Registry
from ocireg.conformance.settings import Settings

pytestmark = pytest.mark.workflow("clients")
SECTION = "Listing Referrers (end-12b), Notary Project signature"


def signatures_of(client: httpx.Client, repo: str, subject: str) -> list[dict[str, object]]:
    response = client.get(
        f"/v2/{repo}/referrers/{subject}", params={"artifactType": SIGNATURE_TYPE}
    )
    expect_status(response, 200, SECTION)
    manifests: list[dict[str, object]] = response.json()["manifests"]
    return manifests


def test_notary_signature_is_found_and_verifies(
    client: httpx.Client, registry: Registry, repo: str
) -> None:
    subject = image(layers=1)
    registry.push_manifest(repo, subject.digest, subject)
    signer = Signer.generate("conformance.example")
    envelope = Blob(signer.envelope(subject.descriptor()), ENVELOPE_TYPE)
    config = empty_config()
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": SIGNATURE_TYPE,
        "config": config.descriptor(),
        "layers": [envelope.descriptor()],
        "subject": subject.descriptor(),
        "annotations": {THUMBPRINTS: json.dumps(signer.thumbprints())},
    }
    signature = Manifest(json.dumps(document).encode(), document["mediaType"], (config, envelope))
    response = registry.push_manifest(repo, signature.digest, signature)
    expect(response.headers.get("OCI-Subject") == subject.digest, SECTION, "no OCI-Subject")

    found = signatures_of(client, repo, subject.digest)
    expect([d["digest"] for d in found] == [signature.digest], SECTION, f"listed {found}")
    expect(found[0].get("artifactType") == SIGNATURE_TYPE, SECTION, "artifactType lost")
    annotations = found[0].get("annotations")
    expect(isinstance(annotations, dict) and THUMBPRINTS in annotations, SECTION, "annotations")

    manifest = client.get(f"/v2/{repo}/manifests/{signature.digest}").json()
    layer = manifest["layers"][0]
    blob = client.get(f"/v2/{repo}/blobs/{layer['digest']}")
    expect_status(blob, 200, SECTION)
    target = verify(blob.content)
    expect(target["digest"] == subject.digest, SECTION, "the signature signs another artifact")


def test_notation_cli_signs_and_the_signature_is_listed(
    client: httpx.Client, registry: Registry, repo: str, settings: Settings, tmp_path: Path
) -> None:
    notation = binary("notation", "not packaged for Debian: https://notaryproject.dev")
    subject = image(layers=1)
    registry.push_manifest(repo, subject.digest, subject)
    env_home = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    if settings.username:  # notation's own variables, so no `notation login` writes them down
        env_home["NOTATION_USERNAME"] = settings.username
        env_home["NOTATION_PASSWORD"] = settings.password or ""
    flags = ["--insecure-registry"] if plain_http(settings) else []
    key = f"conformance-{settings.run_id}"
    reference = f"{host(settings)}/{repo}@{subject.digest}"
    for command in (
        [notation, "cert", "generate-test", "--default", key],
        [notation, "sign", *flags, reference],
    ):
        done = subprocess.run(command, capture_output=True, text=True, env=env_home, timeout=120)
        expect(done.returncode == 0, SECTION, f"{command} failed: {done.stdout}{done.stderr}")
    found = signatures_of(client, repo, subject.digest)
    expect(len(found) == 1, SECTION, f"notation's signature is not listed: {found}")
    listed = subprocess.run(
        [notation, "ls", *flags, reference], capture_output=True, text=True, env=env_home
    ).stdout
    expect(str(found[0]["digest"]) in listed, SECTION, f"notation ls does not show it: {listed}")
