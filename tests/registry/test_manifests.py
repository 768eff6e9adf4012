from __future__ import annotations

import json
from typing import Any

import pytest

from ocireg.errors import ErrorCode, RegistryError
from ocireg.registry import mediatypes as mt
from ocireg.registry.manifests import parse_manifest

DIGEST = "sha256:" + "a" * 64


def _desc(
    media_type: str = "application/vnd.oci.image.layer.v1.tar", **extra: Any
) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": DIGEST, "size": 1, **extra}


def _manifest(**fields: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": _desc("application/vnd.oci.image.config.v1+json"),
        "layers": [_desc()],
        **fields,
    }


def _parse(document: Any, content_type: str | None = mt.OCI_MANIFEST, docker: bool = True):  # type: ignore[no-untyped-def]
    return parse_manifest(json.dumps(document).encode(), content_type, docker)


def _invalid(document: Any, content_type: str | None = mt.OCI_MANIFEST, docker: bool = True) -> Any:
    with pytest.raises(RegistryError) as raised:
        _parse(document, content_type, docker)
    assert raised.value.code is ErrorCode.MANIFEST_INVALID
    return raised.value.detail


def test_image_manifest() -> None:
    manifest = _parse(_manifest(annotations={"a": "b"}))
    assert manifest.media_type == mt.OCI_MANIFEST
    assert manifest.config is not None and len(manifest.layers) == 1
    assert manifest.annotations == {"a": "b"}
    assert manifest.referrer_artifact_type() == "application/vnd.oci.image.config.v1+json"


def test_artifact_type_wins() -> None:
    manifest = _parse(_manifest(artifactType="application/x.sig", subject=_desc(mt.OCI_MANIFEST)))
    assert manifest.referrer_artifact_type() == "application/x.sig"
    assert manifest.subject is not None and str(manifest.subject.digest) == DIGEST


def test_index() -> None:
    index = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [_desc(mt.OCI_MANIFEST, platform={"architecture": "amd64", "os": "linux"})],
    }
    manifest = _parse(index, mt.OCI_INDEX)
    assert manifest.is_index and manifest.referrer_artifact_type() is None


def test_media_type_from_body_when_header_is_generic() -> None:
    assert _parse(_manifest(), "application/json").media_type == mt.OCI_MANIFEST
    assert _parse(_manifest(), None).media_type == mt.OCI_MANIFEST


def test_media_type_from_header_when_body_has_none() -> None:
    document = _manifest()
    del document["mediaType"]
    assert _parse(document).media_type == mt.OCI_MANIFEST


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ([], ""),
        (_manifest(schemaVersion=True), "schemaVersion"),
        (_manifest(layers=[{"mediaType": "x/y", "digest": DIGEST}]), "layers[0].size"),
        (_manifest(layers=[_desc(urls="x")]), "layers[0].urls"),
        (_manifest(layers=[_desc(data="***")]), "layers[0].data"),
        (_manifest(subject="x"), "subject"),
        (_manifest(artifactType="nope"), "artifactType"),
        (_manifest(mediaType=5), "mediaType"),
    ],
)
def test_invalid_fields_are_named(document: Any, field: str) -> None:
    assert _invalid(document)["field"] == field


def test_docker_needs_compat_and_media_type() -> None:
    document = _manifest(mediaType=mt.DOCKER_MANIFEST)
    assert _parse(document, mt.DOCKER_MANIFEST).media_type == mt.DOCKER_MANIFEST
    assert "docker2s2" in _invalid(document, mt.DOCKER_MANIFEST, docker=False)["reason"]
    del document["mediaType"]
    assert _invalid(document, mt.DOCKER_MANIFEST)["field"] == "mediaType"


def test_mismatched_types() -> None:
    assert _invalid(_manifest(), mt.OCI_INDEX)["field"] == "mediaType"
    assert _invalid(_manifest(), "text/plain")["field"] == "Content-Type"


def test_not_json() -> None:
    with pytest.raises(RegistryError):
        parse_manifest(b"\xff", mt.OCI_MANIFEST, True)
