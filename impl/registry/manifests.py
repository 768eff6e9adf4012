"""Manifest validation: the image-spec rules for OCI manifests and indexes, and Docker v2s2.

:func:`parse_manifest` turns pushed bytes into a :class:`Manifest` or raises MANIFEST_INVALID
with a detail that names the offending field. Existence of referenced content is checked by the
caller, which knows the repository.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from ocireg import jsonparse
from ocireg.digests import Digest, parse_digest
from ocireg.errors import ErrorCode, RegistryError
from ocireg.heap import collector_paused
from ocireg.registry import mediatypes as mt

# RFC 6838 media type, as the image-spec's defs-descriptor.json spells it.
MEDIA_TYPE_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)
GENERIC_CONTENT_TYPES = frozenset({"", "application/json", "application/octet-stream"})
# The image-spec's descriptor size is an int64: what clients (Go's) and the meta DB can hold.
MAX_SIZE = 2**63 - 1


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    external: bool = False  # has `urls`: the content may live outside the registry


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor | None
    layers: list[Descriptor] = field(default_factory=list)
    manifests: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEX_TYPES

    def referrer_artifact_type(self) -> str | None:
        """The artifactType a referrers response shows for this manifest (see the spec's
        "Listing Referrers")."""
        if self.artifact_type:
            return self.artifact_type
        return None if self.is_index or self.config is None else self.config.media_type


def invalid(where: str, reason: str) -> RegistryError:
    return RegistryError(ErrorCode.MANIFEST_INVALID, {"field": where, "reason": reason})


def _media_type(value: Any, where: str) -> str:
    if not isinstance(value, str) or not MEDIA_TYPE_RE.fullmatch(value):
        raise invalid(where, "must be a media type (RFC 6838)")
    return value


def _annotations(value: Any, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise invalid(where, "must be an object of strings")
    return value


def _size(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIZE:
        raise invalid(where, f"must be an integer from 0 to {MAX_SIZE} (int64)")
    return value


def _digest(value: Any, where: str) -> Digest:
    if not isinstance(value, str):
        raise invalid(where, "must be a digest string")
    try:
        return parse_digest(value)
    except RegistryError:
        raise invalid(where, "malformed digest") from None


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise invalid(where, "must be a descriptor object")
    urls = value.get("urls")
    if urls is not None and (
        not isinstance(urls, list) or not all(isinstance(u, str) for u in urls)
    ):
        raise invalid(f"{where}.urls", "must be an array of strings")
    data = value.get("data")
    if data is not None:
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise invalid(f"{where}.data", "must be base64") from None
    artifact_type = value.get("artifactType")
    platform = value.get("platform")
    if platform is not None and not (
        isinstance(platform, dict)
        and isinstance(platform.get("architecture"), str)
        and isinstance(platform.get("os"), str)
    ):
        raise invalid(f"{where}.platform", "must have string architecture and os")
    return Descriptor(
        media_type=_media_type(value.get("mediaType"), f"{where}.mediaType"),
        digest=_digest(value.get("digest"), f"{where}.digest"),
        size=_size(value.get("size"), f"{where}.size"),
        artifact_type=None
        if artifact_type is None
        else _media_type(artifact_type, f"{where}.artifactType"),
        annotations=_annotations(value.get("annotations"), f"{where}.annotations"),
        external=bool(urls),
    )


def _descriptors(value: Any, where: str) -> list[Descriptor]:
    if not isinstance(value, list):
        raise invalid(where, "must be an array of descriptors")
    return [_descriptor(item, f"{where}[{i}]") for i, item in enumerate(value)]


def resolve_media_type(content_type: str | None, document: dict[str, Any]) -> str:
    """The manifest's media type from the request's Content-Type and the body's mediaType."""
    declared = (content_type or "").split(";", 1)[0].strip().lower()
    body_type = document.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise invalid("mediaType", "must be a string")
    if declared in GENERIC_CONTENT_TYPES:
        if body_type is None:
            raise invalid("mediaType", "send the manifest media type as Content-Type")
        declared = body_type
    if declared not in mt.MANIFEST_TYPES:
        raise invalid("Content-Type", f"unsupported manifest media type {declared!r}")
    if body_type is not None and body_type != declared:
        raise invalid("mediaType", f"{body_type!r} does not match Content-Type {declared!r}")
    if declared in mt.DOCKER_TYPES and body_type is None:
        raise invalid("mediaType", "Docker manifests must carry mediaType")
    return declared


def parse_manifest(
    data: bytes, content_type: str | None, docker_compat: bool, *, pushed: bool = False
) -> Manifest:
    """The manifest in ``data``, or MANIFEST_INVALID. A manifest being ``pushed`` must be plain
    JSON (see :mod:`ocireg.jsonparse`); one already stored is read as it was accepted, so that
    what an older version stored stays readable (its blobs stay known to GC)."""
    if len(data) < jsonparse.LARGE:
        return _parse_manifest(data, content_type, docker_compat, pushed)
    with collector_paused():  # see ocireg.heap: a large one is tens of thousands of objects
        return _parse_manifest(data, content_type, docker_compat, pushed)


def _parse_manifest(data: bytes, content_type: str | None, docker_compat: bool, pushed: bool
                    ) -> Manifest:  # fmt: skip
    try:
        document = jsonparse.loads(data, strict=pushed)
    except jsonparse.JSONError as exc:
        raise invalid("", f"not plain JSON: {exc}") from None
    if not isinstance(document, dict):
        raise invalid("", "must be a JSON object")
    media_type = resolve_media_type(content_type, document)
    if media_type in mt.DOCKER_TYPES and not docker_compat:
        raise invalid("mediaType", "Docker manifests need http.compat to contain docker2s2")
    version = document.get("schemaVersion")
    if version != 2 or isinstance(version, bool) or (pushed and type(version) is not int):
        raise invalid("schemaVersion", "must be the integer 2")  # not true, not 2.0
    subject = document.get("subject")
    artifact_type = document.get("artifactType")
    common: dict[str, Any] = {
        "media_type": media_type,
        "subject": None if subject is None else _descriptor(subject, "subject"),
        "artifact_type": None
        if artifact_type is None
        else _media_type(artifact_type, "artifactType"),
        "annotations": _annotations(document.get("annotations"), "annotations"),
    }
    if media_type in mt.INDEX_TYPES:
        if "manifests" not in document:
            raise invalid("manifests", "required")
        return Manifest(
            config=None, manifests=_descriptors(document["manifests"], "manifests"), **common
        )
    if "config" not in document:
        raise invalid("config", "required")
    if "layers" not in document:
        raise invalid("layers", "required")
    return Manifest(
        config=_descriptor(document["config"], "config"),
        layers=_descriptors(document["layers"], "layers"),
        **common,
    )
