"""What the meta DB knows about one manifest, read from storage.

Descriptive fields come from the manifest's annotations and, for an image, from its config
(platform, creation time, labels); an index's platforms are its children's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ocireg import jsonparse
from ocireg.digests import parse_digest
from ocireg.errors import RegistryError
from ocireg.registry.manifests import Manifest
from ocireg.registry.signatures import signature_kind
from ocireg.registry.store import Registry

CONFIG_LIMIT = 4 * 1024 * 1024
# Each descriptor size is an int64 (the manifest parser refuses more); their sum may not be,
# and the meta DB's integers are int64: the total is capped rather than refused.
MAX_CONTENT_SIZE = 2**63 - 1


@dataclass(frozen=True)
class Platform:
    os: str
    arch: str
    variant: str = ""


@dataclass
class ImageRecord:
    digest: str
    media_type: str
    size: int
    artifact_type: str = ""
    config_digest: str = ""
    subject: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    platforms: list[Platform] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    layer_sizes: list[int] = field(default_factory=list)  # the manifest's, layer by layer
    history: list[dict[str, Any]] = field(default_factory=list)  # the config's, see _history
    children: list[str] = field(default_factory=list)
    created: str = ""
    content_size: int = 0  # manifest, config and layers
    signature: str = ""  # "notation" or "cosign" when this manifest is a signature
    stored_at: float = 0.0  # when storage last wrote it: the push time a rebuild can know


def _config(registry: Registry, repo: str, manifest: Manifest) -> dict[str, Any]:
    if manifest.config is None:
        return {}
    data = registry.small_blob(repo, manifest.config.digest, CONFIG_LIMIT)
    try:
        document = jsonparse.loads(data) if data else {}
    except jsonparse.JSONError:
        return {}
    return document if isinstance(document, dict) else {}


def _text(value: Any) -> str:
    """A string from a config as the DB can store it: JSON allows lone surrogates
    (``"\\ud800"``), which are no UTF-8 and which SQLite refuses."""
    if not isinstance(value, str):
        return ""
    try:
        value.encode()
    except UnicodeEncodeError:
        return ""
    return value


def image_record(
    registry: Registry, repo: str, digest: str, size: int, manifest: Manifest
) -> ImageRecord:
    record = ImageRecord(
        digest=digest,
        media_type=manifest.media_type,
        size=size,
        artifact_type=manifest.referrer_artifact_type() or "",
        config_digest=str(manifest.config.digest) if manifest.config else "",
        subject=str(manifest.subject.digest) if manifest.subject else "",
        annotations=dict(manifest.annotations or {}),
        layers=[str(layer.digest) for layer in manifest.layers],
        layer_sizes=[layer.size for layer in manifest.layers],
        children=[str(child.digest) for child in manifest.manifests],
        signature=signature_kind(manifest),
    )
    total = size + sum(layer.size for layer in manifest.layers)
    if manifest.config is not None:
        total += manifest.config.size
    record.content_size = min(total, MAX_CONTENT_SIZE)
    if manifest.config is not None:
        config = _config(registry, repo, manifest)
        inner = config.get("config")
        labels = inner.get("Labels") if isinstance(inner, dict) else None
        record.labels = {k: str(v) for k, v in (labels or {}).items()}
        if isinstance(config.get("os"), str) and isinstance(config.get("architecture"), str):
            variant = config.get("variant")
            variant = variant if isinstance(variant, str) else ""
            record.platforms = [Platform(config["os"], config["architecture"], variant)]
        record.created = _text(config.get("created"))
        record.history = _history(config.get("history"))
    return record


def _history(entries: Any) -> list[dict[str, Any]]:
    """The image config's ``history``, each entry reduced to the image-spec's fields (search
    shows them, matched to layers as zot does); entries that are not objects are skipped."""
    if not isinstance(entries, list):
        return []
    return [
        {
            "created": _text(entry.get("created")),
            "created_by": _text(entry.get("created_by")),
            "author": _text(entry.get("author")),
            "comment": _text(entry.get("comment")),
            "empty_layer": entry.get("empty_layer") is True,
        }
        for entry in entries
        if isinstance(entry, dict)
    ]


def children_platforms(registry: Registry, repo: str, record: ImageRecord) -> None:
    """An index's platforms are those of the children stored in the repository."""
    seen: list[Platform] = []
    for child in record.children:
        try:
            parsed = registry.parsed_manifest(repo, str(parse_digest(child)))
        except RegistryError:
            continue
        if parsed is None:
            continue
        child_record = image_record(registry, repo, child, 0, parsed)
        seen += [p for p in child_record.platforms if p not in seen]
    record.platforms = seen


@dataclass(frozen=True)
class ApiKey:
    """One API key's details (zot's APIKeyDetails); the key itself is never stored."""

    uuid: str
    user: str
    label: str
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float | None  # None: never
    creator_ua: str
    groups: tuple[str, ...]  # the user's groups when the key was made (LDAP's, for one)
    last_used: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at
