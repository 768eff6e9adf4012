"""lint's rules on parsed manifests: which manifests are exempt, and where a key may be."""

from __future__ import annotations

import json
from typing import Any

from ocireg.digests import digest_bytes
from ocireg.ext.lint.check import is_signature, missing_annotations
from ocireg.registry import mediatypes as mt
from ocireg.registry.manifests import parse_manifest
from tests.registry.world import World

LAYER = {
    "mediaType": "application/vnd.oci.image.layer.v1.tar",
    "size": 1,
    "digest": "sha256:" + "a" * 64,
}


def manifest(**fields: Any) -> Any:
    document = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": 2,
            "digest": "sha256:" + "b" * 64,
        },
        "layers": [LAYER],
        **fields,
    }
    return parse_manifest(json.dumps(document).encode(), mt.OCI_MANIFEST, docker_compat=True)


def test_signatures_are_recognised() -> None:
    assert is_signature(manifest(artifactType="application/vnd.cncf.notary.signature"))
    cosign = {**LAYER, "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json"}
    assert is_signature(manifest(layers=[cosign]))
    assert not is_signature(manifest())
    assert not is_signature(manifest(artifactType="application/vnd.example.sbom"))


def test_a_key_counts_in_annotations_or_config_labels() -> None:
    world = World()
    image = world.image("r", b"layer", "v1", annotations={"a": "1"})
    parsed = world.registry.parsed_manifest("r", image["digest"])
    assert parsed is not None
    assert missing_annotations(world.registry, "r", parsed, ["a", "b", "c"]) == ["b", "c"]
    data = json.dumps({"config": {"Labels": {"b": "2"}}}).encode()
    world.blob("r", data)
    config = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "size": len(data),
        "digest": str(digest_bytes(data)),
    }
    labelled = manifest(annotations={"a": "1"}, config=config)
    assert missing_annotations(world.registry, "r", labelled, ["a", "b", "c"]) == ["c"]
